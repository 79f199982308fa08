"""What a person sees: forkchat in a real terminal emulator (tmux).

Terminal() starts a tmux server of its own (its socket in a temporary
folder), with one window of a fixed size running an interactive bash with
no rc files and the prompt "$ ". A test types as a person would
(type / keys), reads the screen as a person sees it (screen(): tmux's
capture-pane, the text of each row), resizes the window, and runs shell
commands to check what reached the shell (a file `touch`ed or not, `stty -g`,
exit codes). Nothing here compares escape bytes: tmux interprets them.

close() checks that no process is left in the pane's session besides the
shell itself, then kills the server.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import FORKCHAT, WAIT, in_sessions, require_tool, wait_until


class Terminal:
    def __init__(self, columns=80, rows=24, env=None, shell="bash --norc --noprofile -i", history=None):
        """history: the window's scrollback in lines (tmux's history-limit;
        None: tmux's default, 2000)."""
        self.tmux = require_tool("tmux")
        require_tool(shell.split()[0])
        self.dir = tempfile.mkdtemp(prefix="forkchat-tmux-")
        self.socket = os.path.join(self.dir, "tmux.sock")
        self.columns, self.rows = columns, rows
        shell_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "LANG": "C.UTF-8",
            "PS1": "$ ",
            "TERM": "screen",  # what tmux emulates (its default-terminal)
            "FORKCHAT": FORKCHAT,
        }
        shell_env.update(env or {})
        command = "env -i " + " ".join(f"{k}='{v}'" for k, v in shell_env.items())
        command += " " + shell
        config = "/dev/null"
        if history is not None:
            config = os.path.join(self.dir, "tmux.conf")
            with open(config, "w") as file:
                file.write(f"set-option -g history-limit {history}\n")
        self._tmux("-f", config, "new-session", "-d", "-x", str(columns), "-y", str(rows), "-s", "t", command)
        self._tmux("set-option", "-g", "status", "off")
        self.shell_pid = int(self._tmux("display-message", "-p", "-t", "t", "#{pane_pid}").strip())
        self.wait_screen(r"^\$", what="the shell's prompt")

    def _tmux(self, *args) -> str:
        run = subprocess.run(
            [self.tmux, "-u", "-S", self.socket, *args], capture_output=True, text=True, timeout=WAIT
        )
        assert run.returncode == 0, f"tmux {' '.join(args)}: {run.stderr}"
        return run.stdout

    # -- what a person does ------------------------------------------------

    def type(self, text: str, pause=0.05):
        """Types text as it is (no key names)."""
        self._tmux("send-keys", "-t", "t", "-l", text)
        time.sleep(pause)

    def keys(self, *names, pause=0.05):
        """Presses keys by tmux name: Enter, BSpace, Left, C-c, Up ..."""
        self._tmux("send-keys", "-t", "t", *names)
        time.sleep(pause)

    def paste(self, text: str):
        """Pastes text as a terminal does (tmux paste-buffer: lines end with \\r)."""
        self._tmux("set-buffer", "-b", "paste", text)
        self._tmux("paste-buffer", "-d", "-b", "paste", "-t", "t")

    def resize(self, columns, rows):
        self._tmux("resize-window", "-t", "t", "-x", str(columns), "-y", str(rows))
        self.columns, self.rows = columns, rows

    def resize_lagging(self, columns, rows, stopped=0.15):
        """Resizes the window as a terminal that lags behind does: the tmux
        server is stopped (SIGSTOP) for `stopped` seconds, while the
        programs' output piles up in the pty, and the resize is asked for
        before it goes on (SIGCONT); it then takes the resize between two
        pieces of what it reads, in the middle of an update."""
        server = int(self._tmux("display-message", "-p", "#{pid}").strip())
        os.kill(server, signal.SIGSTOP)
        try:
            time.sleep(stopped)
            command = [self.tmux, "-u", "-S", self.socket, "resize-window", "-t", "t"]
            resizing = subprocess.Popen(command + ["-x", str(columns), "-y", str(rows)])
            time.sleep(0.02)  # the client's request waits in the server's socket
        finally:
            os.kill(server, signal.SIGCONT)
        assert resizing.wait(timeout=WAIT) == 0, f"tmux resize-window -x {columns} -y {rows}"
        self.columns, self.rows = columns, rows

    def run(self, command: str, timeout=10.0):
        """Runs a shell command at the prompt and waits until it is done."""
        marker = f"done-{time.monotonic_ns()}"
        self.type(f"{command}; echo {marker}")
        self.keys("Enter")
        self.wait_screen(rf"^{marker}$", timeout=timeout, what=f"the end of {command!r}")

    def exit_status(self, timeout=10.0) -> int:
        """The exit status of the last command (echo $?), once it is done."""
        self.type("echo rc=$?")
        self.keys("Enter")
        rows = self.wait_screen(r"^rc=\d+$", timeout=timeout, what="the exit status")
        return int([r for r in rows if re.fullmatch(r"rc=\d+", r)][-1][3:])

    # -- what a person sees --------------------------------------------------

    def screen(self) -> list[str]:
        """The rows of the window, as text (trailing blanks removed)."""
        text = self._tmux("capture-pane", "-p", "-t", "t")
        rows = [row.rstrip() for row in text.split("\n")][: self.rows]
        return rows + [""] * (self.rows - len(rows))

    def history(self) -> list[str]:
        """Every row the window has shown, its scrollback first (what a
        person reads by scrolling back)."""
        text = self._tmux("capture-pane", "-p", "-S", "-", "-t", "t")
        return [row.rstrip() for row in text.split("\n")]

    def joined_history(self) -> list[str]:
        """Like history(), with the rows tmux wrapped at the window's width
        joined back into the lines that were written (capture-pane -J)."""
        text = self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t")
        return [row.rstrip() for row in text.split("\n")]

    def show(self) -> str:
        return "\n".join(f"{i + 1:2}|{row}" for i, row in enumerate(self.screen()))

    def wait_screen(self, pattern, timeout=10.0, what=None) -> list[str]:
        """Waits until a row matches the regex `pattern` (or, for a
        function, until it returns true for the rows); returns the rows."""
        test = pattern if callable(pattern) else (lambda rows: any(re.search(pattern, r) for r in rows))
        def rows_once_shown():
            rows = self.screen()
            return rows if test(rows) else None

        rows = wait_until(rows_once_shown, timeout, interval=0.05)
        if not rows:
            raise AssertionError(f"the terminal never showed {what or pattern!r}; it shows:\n{self.show()}")
        return rows

    def cursor(self) -> tuple[int, int]:
        """The cursor's row and column, from 1."""
        x, y = self._tmux("display-message", "-p", "-t", "t", "#{cursor_x} #{cursor_y}").split()
        return int(y) + 1, int(x) + 1

    def pane(self, variable: str) -> str:
        """A tmux format variable of the pane: pane_title, alternate_on ..."""
        return self._tmux("display-message", "-p", "-t", "t", "#{%s}" % variable).strip()

    def buffers(self) -> str:
        return self._tmux("list-buffers")

    # -- processes -----------------------------------------------------------

    def forkchat_pids(self) -> list[int]:
        """The forkchat processes running in the pane (parent first)."""
        found = [p for p in in_sessions([self.shell_pid]) if p.comm == "forkchat" and p.state != "Z"]
        found.sort(key=lambda p: p.pid)
        return [p.pid for p in found]

    def wait_forkchat(self, count, timeout=5.0) -> list[int]:
        wait_until(lambda: len(self.forkchat_pids()) == count, timeout)
        pids = self.forkchat_pids()
        assert len(pids) == count, f"expected {count} forkchat processes, found {pids}\n{self.show()}"
        return pids

    def close(self):
        """Checks that nothing but the shell is left in the pane's session,
        then ends the server."""
        try:
            left = [p for p in wait_sessions_empty_but_shell(self.shell_pid)]
            assert not left, f"processes left in the terminal: {left}\n{self.show()}"
        finally:
            subprocess.run([self.tmux, "-S", self.socket, "kill-server"], capture_output=True, timeout=WAIT)
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_sessions_empty_but_shell(shell_pid, timeout=3.0):
    def left():
        return [p for p in in_sessions([shell_pid]) if p.pid != shell_pid]

    wait_until(lambda: not left(), timeout)
    return left()
