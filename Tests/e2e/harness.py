"""Helpers for the forkchat end-to-end tests (standard library only).

- Proc / Forkchat: a process in its own session, with stdin a pipe, a
  pseudo-terminal or /dev/null, and background threads collecting stdout and
  stderr so that a test can wait for a line with a timeout.
- Peer: a raw Python TCP peer (send, half-close, RST, read with timeouts).
- start_chat / forkchat_pair: a connected forkchat and its peer.
- Modes: start_chat(mode=...) and mode_args() turn a mode name into
  forkchat's arguments; Forkchat.wait_shape(mode) checks the processes and
  threads that mode runs as.
- Traces: parse_trace() reads the `--trace` lines of stderr.
- Leftover tracking: conftest.py opens a TestScope for each test (a
  fixture); every process and socket made here registers with it, and at
  the end of the test no process of those sessions may be left (zombies
  included), nor one that its own parent did not reap.
- wait_until(): the one polling loop, with a timeout.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FORKCHAT = os.environ.get("FORKCHAT") or str((HERE / ".." / ".." / ".build" / "debug" / "forkchat").resolve())

# Upper bound for any single wait on a process or a socket.
WAIT = 20.0
# How long leftovers may take to disappear after a test.
SETTLE = 2.0

HAVE_IPV6 = True
try:
    _s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    _s.bind(("::1", 0))
    _s.close()
except OSError:
    HAVE_IPV6 = False


# ---------------------------------------------------------------------------
# The run: one folder shared by the xdist workers of one pytest run

RUN_DIR_ENV = "FORKCHAT_E2E_RUN"


def run_dir() -> str:
    """The folder this pytest run shares between its workers (conftest.py
    makes it and removes it; its path is in the environment, which the
    workers inherit). Outside such a run: a folder of this process."""
    folder = os.environ.get(RUN_DIR_ENV)
    if not folder:
        import tempfile

        folder = tempfile.mkdtemp(prefix="forkchat-e2e-")
        os.environ[RUN_DIR_ENV] = folder
    os.makedirs(folder, exist_ok=True)
    return folder


def worker_id() -> str:
    """"gw0", "gw1"... under pytest-xdist, "main" in a run without it."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


class RunLock:
    """Lets a test marked `alone` run with no other test of the run beside
    it, and the others run side by side: every test holds a shared flock(2)
    on the run's lock file, an `alone` test an exclusive one. A second lock
    (the turnstile) keeps an `alone` test from waiting forever behind the
    shared holders that keep coming: it holds the turnstile while it waits,
    and every test passes through the turnstile before it takes its shared
    lock. Without xdist, there is no one to wait for: nothing is locked."""

    def __init__(self, fds):
        self.fds = fds

    @classmethod
    def for_test(cls, alone: bool) -> "RunLock":
        if "PYTEST_XDIST_WORKER" not in os.environ:
            return cls([])
        folder = run_dir()
        turnstile = os.open(os.path.join(folder, "turnstile.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        main = os.open(os.path.join(folder, "tests.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if alone:
            fcntl.flock(main, fcntl.LOCK_EX)  # waits until every other test is done
            return cls([main, turnstile])
        fcntl.flock(main, fcntl.LOCK_SH)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        os.close(turnstile)
        return cls([main])

    def release(self):
        for fd in self.fds:
            os.close(fd)  # closing the descriptor releases its flock
        self.fds = []


# ---------------------------------------------------------------------------
# Processes: /proc scanning, subreaper, leftover bookkeeping

def become_subreaper() -> None:
    """Orphans of our sessions are reparented to us (not to a PID 1 that may
    never reap them), so they can be reaped and told apart from leftovers."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


class ProcInfo:
    __slots__ = ("pid", "comm", "state", "ppid", "pgrp", "session")

    def __init__(self, pid, comm, state, ppid, pgrp, session):
        self.pid, self.comm, self.state, self.ppid, self.pgrp, self.session = pid, comm, state, ppid, pgrp, session

    def __repr__(self):
        return f"pid {self.pid} ({self.comm}) state {self.state} ppid {self.ppid} session {self.session}"


def proc_table() -> list[ProcInfo]:
    table = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        try:
            close = data.rindex(b")")
            comm = data[data.index(b"(") + 1 : close].decode(errors="replace")
            fields = data[close + 2 :].split()
            table.append(ProcInfo(int(name), comm, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3])))
        except (ValueError, IndexError):
            continue
    return table


def children_of(pid: int) -> list[ProcInfo]:
    return [p for p in proc_table() if p.ppid == pid]


def proc_children(pid: int) -> list[int]:
    """/proc/<pid>/task/<pid>/children: the children of the main thread,
    zombies included (a child is listed until it is reaped)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        if os.path.exists(f"/proc/{pid}/stat"):
            raise AssertionError(f"/proc/{pid}/task/{pid}/children is missing (kernel without CONFIG_PROC_CHILDREN?)")
        return []  # the process is gone


def threads_of(pid: int) -> list[int]:
    """The thread ids of a process (/proc/<pid>/task)."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return []


def session_asleep(sid) -> bool:
    """Every thread of every live process of session `sid` sleeps (state S
    in /proc/PID/task/TID/stat): each has done what it was woken for and
    waits. Data written to one of them wakes it at once (the writer marks
    it runnable before write(2) returns), so "asleep after the write" means
    "it has seen the data, or does not watch that descriptor". A wait for
    a timer is sleep too: this says nothing about timers."""
    procs = [p for p in in_sessions([sid]) if p.state != "Z"]
    if not procs:
        return False
    for p in procs:
        for tid in threads_of(p.pid):
            try:
                with open(f"/proc/{p.pid}/task/{tid}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue  # gone meanwhile
            if data[data.rindex(b")") + 2 :].split()[0] != b"S":
                return False
    return True


_READ_SYSCALL = {"x86_64": 0, "aarch64": 63, "riscv64": 63}.get(os.uname().machine)


def _blocked_in_read(tid: int, fd: int) -> bool:
    """Our own thread `tid` waits inside read(fd) (/proc/self/task/TID/syscall)."""
    try:
        with open(f"/proc/self/task/{tid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] == str(_READ_SYSCALL) and int(fields[1], 16) == fd


def unread_bytes(fd: int) -> int:
    """Bytes waiting to be read in a pipe, pty or socket (FIONREAD); for a
    pipe, either end tells."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, "little")


def in_sessions(sids) -> list[ProcInfo]:
    sids = set(sids)
    return [p for p in proc_table() if p.session in sids]


def wait_until(condition, timeout=5.0, interval=0.02, what=None):
    """Calls `condition` until it returns something true or `timeout`
    seconds have passed; returns its last value. On timeout: false, or, with
    `what` (what was awaited), an AssertionError that says so."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            if what is not None:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            return value
        time.sleep(interval)


class TestScope:
    """What one test started, checked when it ends: the processes (each in
    a session of its own), the raw sockets, and the processes of those
    sessions that their own parent did not reap (reparented to us, the
    subreaper). conftest.py's autouse fixture opens one for each test."""

    def __init__(self, given_ports: set[int]):
        self.given_ports = given_ports  # the whole run's: a port is handed out once
        self.procs: list["Proc"] = []
        self.sockets: list[socket.socket] = []
        self.orphans: list[tuple[int, str, str]] = []  # (pid, comm, how it ended)
        self.orphans_expected = False

    def popen_pids(self) -> set[int]:
        """Our own children (Popen reaps them), not orphans."""
        return {p.pid for p in self.procs}

    def sessions(self) -> list[int]:
        return [p.pid for p in self.procs]

    def reap_orphans(self) -> None:
        """Reaps zombies of our sessions that were reparented to us."""
        me, ours = os.getpid(), self.popen_pids()
        for p in in_sessions(self.sessions()):
            if p.ppid == me and p.state == "Z" and p.pid not in ours:
                try:
                    pid, status = os.waitpid(p.pid, os.WNOHANG)
                except ChildProcessError:
                    continue
                if pid:
                    self.orphans.append((pid, p.comm, _status_text(status)))

    def live(self, sids=None) -> list[ProcInfo]:
        """The processes of our sessions (or of `sids`) that are still there."""
        self.reap_orphans()
        ours = self.popen_pids()
        return [p for p in in_sessions(sids or self.sessions()) if not (p.pid in ours and p.state == "Z")]

    def end(self) -> list[str]:
        """Cleans up; returns the problems found (processes left)."""
        problems = []
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
        for proc in self.procs:
            if proc.popen.poll() is None:
                problems.append(
                    f"{proc.name} (pid {proc.pid}) still running at the end of the test; stderr:\n{proc.err_text()}"
                )
                proc.kill_session()
                try:
                    proc.popen.wait(5)
                except subprocess.TimeoutExpired:
                    problems.append(f"{proc.name} (pid {proc.pid}) survived SIGKILL")
        left = wait_sessions_empty(self.sessions())
        if left:
            problems.append("processes left behind: " + "; ".join(map(repr, left)))
            for p in left:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_sessions_empty(self.sessions())
        if self.orphans and not self.orphans_expected:
            problems.append(
                "processes not reaped by their parent (left to init; reaped by the test instead): "
                + "; ".join(f"pid {pid} ({comm}) {how}" for pid, comm, how in self.orphans)
            )
        for proc in self.procs:
            proc._close()
        return problems


# The scope of the running test (set by conftest.py's fixture): processes
# and sockets register themselves with it as they are made.
_scope: TestScope | None = None


def begin_test(given_ports: set[int]) -> TestScope:
    global _scope
    _scope = TestScope(given_ports)
    return _scope


def end_test() -> list[str]:
    global _scope
    try:
        return _scope.end() if _scope else []
    finally:
        _scope = None


def current_scope() -> TestScope:
    assert _scope is not None, "harness objects are made inside a test (conftest.py opens its scope)"
    return _scope


def live_in_sessions(sids) -> list[ProcInfo]:
    return current_scope().live(sids)


def wait_sessions_empty(sids, timeout=SETTLE) -> list[ProcInfo]:
    """Waits until no process of these sessions remains; returns what is left."""
    return [] if wait_until(lambda: not live_in_sessions(sids), timeout) else live_in_sessions(sids)


def expect_orphans() -> None:
    """The test kills a parent with SIGKILL: its child is reaped by us."""
    current_scope().orphans_expected = True


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited {os.WEXITSTATUS(status)}"


# ---------------------------------------------------------------------------
# Processes with collected output

def _become_tty_session_leader():  # runs in the child, after the dup2s
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def signaled(returncode, sig) -> bool:
    """Death by `sig`: -N as Python's direct child, or 128+N."""
    return returncode in (-sig, 128 + sig)


class Proc:
    """A process in its own session.

    stdin: "pipe", "pty" or "devnull". stdout: "pipe", "pty" (only with a
    pty stdin), "devnull" or "closed" (a pipe whose reading end is closed).
    Either may also be a descriptor (an int), passed as it is and left to
    the caller. stderr is always collected.
    """

    def __init__(self, argv, *, stdin="pipe", stdout=None, env=None, name=None):
        self.argv = [str(a) for a in argv]
        self.name = name or os.path.basename(self.argv[0])
        if stdout is None:
            stdout = "pty" if stdin == "pty" else "pipe"
        assert stdout != "pty" or stdin == "pty"
        self.stdin_kind, self.stdout_kind = stdin, stdout
        self.out = bytearray()  # stdout (the terminal's output when stdout is the pty)
        self.err = bytearray()
        self.tty = bytearray()  # the terminal's output (echo) when stdout is not the pty
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._reader_tids: dict[int, int] = {}  # fd -> the native id of the thread reading it
        self._feeders: list[threading.Thread] = []
        self.feed_error = None
        self.master = None
        self.started = time.monotonic()
        self.ended = None

        full_env = dict(os.environ)
        full_env["NO_COLOR"] = "1"
        full_env.setdefault("TERM", "xterm")
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value

        kwargs = dict(env=full_env, stderr=subprocess.PIPE, close_fds=True)
        to_close = []
        if stdin == "pty":
            master, slave = pty.openpty()
            self.master = master
            to_close.append(slave)
            kwargs["stdin"] = slave
            kwargs["preexec_fn"] = _become_tty_session_leader
        else:
            kwargs["start_new_session"] = True
            kwargs["stdin"] = stdin if isinstance(stdin, int) else {"pipe": subprocess.PIPE, "devnull": subprocess.DEVNULL}[stdin]
        if stdout == "pty":
            kwargs["stdout"] = kwargs["stdin"]
        elif stdout == "closed":
            r, w = os.pipe()
            os.close(r)
            to_close.append(w)
            kwargs["stdout"] = w
        elif isinstance(stdout, int):
            kwargs["stdout"] = stdout
        else:
            kwargs["stdout"] = {"pipe": subprocess.PIPE, "devnull": subprocess.DEVNULL}[stdout]
        try:
            self.popen = subprocess.Popen(self.argv, **kwargs)
        finally:
            for fd in to_close:
                os.close(fd)
        self.pid = self.popen.pid
        current_scope().procs.append(self)

        self._reader(self.popen.stderr.fileno(), self.err)
        if self.popen.stdout is not None:
            self._reader(self.popen.stdout.fileno(), self.out)
        if self.master is not None:
            self._reader(self.master, self.out if stdout == "pty" else self.tty)

    # -- output ------------------------------------------------------------

    def _reader(self, fd, buf):
        def run():
            self._reader_tids[fd] = threading.get_native_id()
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError as e:  # EIO: every slave descriptor is closed
                    if e.errno == errno.EINTR:
                        continue
                    data = b""
                with self._cond:
                    if not data:
                        self._cond.notify_all()
                        return
                    buf.extend(data)
                    self._cond.notify_all()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._threads.append(t)

    def _view(self, stream):
        if stream == "err":
            return bytes(self.err)
        data = bytes(self.out if stream == "out" else self.tty)
        if (stream == "out" and self.stdout_kind == "pty") or stream == "tty":
            data = data.replace(b"\r\n", b"\n")
        return data

    def out_bytes(self) -> bytes:
        """stdout as written ("\\r\\n" from the terminal's ONLCR turned back to "\\n")."""
        with self._cond:
            return self._view("out")

    def err_text(self) -> str:
        with self._cond:
            return bytes(self.err).decode(errors="replace")

    def out_text(self) -> str:
        return self.out_bytes().decode(errors="replace")

    def describe(self) -> str:
        out = self.out_bytes()
        if len(out) > 2000:
            out = out[:1000] + b"...[%d bytes]..." % len(out) + out[-500:]
        return (
            f"\n--- {self.name} {' '.join(self.argv[1:])} (pid {self.pid}, stdin {self.stdin_kind}, "
            f"returncode {self.popen.returncode})\n--- stderr:\n{self.err_text()}--- stdout:\n{out!r}\n"
        )

    def wait_for(self, stream, pattern, timeout=10.0):
        """Waits until the regex `pattern` (str or bytes) matches the stream
        ("out", "err" or "tty"); returns the match."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self._view(stream))
                if m:
                    return m
                remaining = deadline - time.monotonic()
                done = self.popen.poll() is not None and not any(t.is_alive() for t in self._threads)
                if remaining <= 0 or done:
                    why = "exited" if done else f"nothing after {timeout} s"
                    raise AssertionError(f"{self.name}: expected {pattern!r} on std{stream}, {why}" + self.describe())
                self._cond.wait(min(remaining, 0.05))

    def wait_asleep(self, timeout=10.0, what=""):
        """Waits until every process and thread of this session sleeps
        (session_asleep): the positive sign that it has done all it was
        woken for, which an absence check waits for instead of a time."""
        if not wait_until(lambda: session_asleep(self.pid), timeout):
            raise AssertionError(f"{self.name}: not asleep within {timeout} s {what}" + self.describe())

    def wait_settled(self, timeout=10.0, what=""):
        """wait_asleep, then until the test has collected all it wrote: our
        pipes from it are empty and each of our reader threads waits inside
        read(2) again (so nothing read is still on its way to the buffers).
        After this, out_bytes() holds everything it wrote so far."""
        self.wait_asleep(timeout, what)

        def collected():
            return all(
                not os.path.exists(f"/proc/self/fd/{fd}") or (unread_bytes(fd) == 0 and _blocked_in_read(tid, fd))
                for fd, tid in self._reader_tids.items()
            )

        if _READ_SYSCALL is None:  # an architecture we do not know: a short grace instead
            time.sleep(0.2)
            return
        if not wait_until(collected, timeout, interval=0.005):
            raise AssertionError(f"{self.name}: its output was not collected within {timeout} s" + self.describe())

    def stdin_unread(self) -> int:
        """Bytes written to the stdin pipe that it has not read yet."""
        assert self.stdin_kind == "pipe"
        return unread_bytes(self.popen.stdin.fileno())

    def wait_err(self, pattern, timeout=10.0):
        return self.wait_for("err", pattern, timeout)

    def wait_out(self, pattern, timeout=10.0):
        return self.wait_for("out", pattern, timeout)

    def wait_out_bytes(self, data: bytes, timeout=10.0):
        return self.wait_for("out", re.escape(data), timeout)

    # -- input -------------------------------------------------------------

    def send(self, data: bytes):
        if self.stdin_kind == "pty":
            view = memoryview(data)
            while view:
                n = os.write(self.master, view)
                view = view[n:]
        else:
            self.popen.stdin.write(data)
            self.popen.stdin.flush()

    def type(self, data: bytes):
        """Types on the terminal, a little at a time, as a person would."""
        assert self.stdin_kind == "pty"
        self.send(data)
        time.sleep(0.05)

    def close_stdin(self):
        if self.stdin_kind == "pty":
            self.send(b"\x04")
        elif self.popen.stdin is not None and not self.popen.stdin.closed:
            self.popen.stdin.close()

    def feed(self, data: bytes, close=True):
        """Writes `data` to the stdin pipe in a background thread."""
        assert self.stdin_kind == "pipe"

        def run():
            try:
                view = memoryview(data)
                fd = self.popen.stdin.fileno()
                while view:
                    n = os.write(fd, view[: 1 << 20])
                    view = view[n:]
                if close:
                    self.popen.stdin.close()
            except OSError as e:
                self.feed_error = e

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._feeders.append(t)
        return t

    # -- end ---------------------------------------------------------------

    def wait(self, timeout=WAIT) -> int:
        """Waits for the exit (and the end of the output); returns the code."""
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout} s" + self.describe()) from None
        self.ended = self.ended or time.monotonic()
        self.join_output()
        return self.popen.returncode

    def join_output(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        for t in self._threads + self._feeders:
            t.join(max(0.0, deadline - time.monotonic()))

    def assert_running(self, why=""):
        assert self.popen.poll() is None, f"{self.name} exited, but should still run {why}" + self.describe()

    def assert_exit(self, expected: int, timeout=WAIT):
        rc = self.wait(timeout)
        assert rc == expected, f"{self.name}: exit status {rc}, expected {expected}" + self.describe()
        return rc

    def assert_signaled(self, sig, timeout=WAIT):
        rc = self.wait(timeout)
        assert signaled(rc, sig), (
            f"{self.name}: exit status {rc}, expected death by {signal.Signals(sig).name} (-{sig} or {128 + sig})"
            + self.describe()
        )
        return rc

    def exited_within(self, seconds) -> bool:
        try:
            self.popen.wait(seconds)
            return True
        except subprocess.TimeoutExpired:
            return False

    def child_pid(self, timeout=5.0) -> int:
        """The pid of forkchat's forked child (the sending process)."""
        def kids():
            return [p for p in children_of(self.pid) if p.state != "Z"]

        if wait_until(lambda: len(kids()) == 1, timeout):
            return kids()[0].pid
        raise AssertionError(f"{self.name}: expected one child process, found {kids()}" + self.describe())

    def signal(self, sig):
        os.kill(self.pid, sig)

    def kill_session(self):
        for p in in_sessions([self.pid]):
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _close(self):
        for f in (self.popen.stdin,):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        self.join_output(2.0)
        for f in (self.popen.stdout, self.popen.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        if self.master is not None:
            try:
                os.close(self.master)
            except OSError:
                pass
            self.master = None


class Forkchat(Proc):
    def __init__(self, *args, screen=False, prefix=(), **kwargs):
        """prefix: a command that runs forkchat, such as `ip netns exec NAME`.
        On a terminal, the suites that read the terminal's bytes test the
        line-by-line chat (--plain); test_screen.py asks for the chat screen
        (screen=True) and reads it through a terminal emulator."""
        if not screen and kwargs.get("stdin") == "pty" and args and args[0] in ("listen", "connect"):
            args = (args[0], "--plain", *args[1:])
        super().__init__([*prefix, FORKCHAT, *args], name="forkchat", **kwargs)

    def check_notices(self):
        """Once a chat command runs, every line on stderr is a notice, or,
        with --trace only, a well-formed trace line."""
        bad = [
            l for l in self.err_text().splitlines()
            if not l.startswith("forkchat: ") and not ("--trace" in self.argv and TRACE_LINE.fullmatch(l))
        ]
        assert not bad, f"stderr lines that are neither notices nor traces: {bad}" + self.describe()

    def trace(self) -> list["TraceEvent"]:
        return parse_trace(self.err_text())

    def wait_shape(self, mode, timeout=5.0):
        """Waits until the process has the shape of `mode` (a mode name, or
        "default": fork), and returns the child's pid (fork) or the sender
        thread's id (threads), else None: fork has one child and one
        thread; threads no child and two threads (main and sender); poll and
        alternate no child and one thread."""
        fork = mode in ("default", "fork")
        want_threads = 2 if mode == "threads" else 1

        def shape():
            kids = [p for p in children_of(self.pid) if p.state != "Z"]
            return kids, threads_of(self.pid)

        def right():
            kids, tids = shape()
            return len(tids) == want_threads and len(kids) == (1 if fork else 0)

        if not wait_until(right, timeout):
            kids, tids = shape()
            raise AssertionError(
                f"{self.name} in {mode} mode: expected {'one child' if fork else 'no child'} "
                f"and {want_threads} thread(s), found children {kids} and threads {tids}" + self.describe()
            )
        kids, tids = shape()
        return kids[0].pid if fork else next((t for t in tids if t != self.pid), None)

    def assert_exit(self, expected: int, timeout=WAIT):
        rc = super().assert_exit(expected, timeout)
        self.check_notices()
        return rc

    def assert_signaled(self, sig, timeout=WAIT):
        rc = super().assert_signaled(sig, timeout)
        self.check_notices()
        return rc


# ---------------------------------------------------------------------------
# --trace

# trace <ms> <pid> <role> <event> [details]. The roles of chat and echo are
# checked by the trace tests; here any word is a role (other commands may
# have their own).
TRACE_LINE = re.compile(r"trace (\d+\.\d{3}) ([1-9]\d*) ([a-z]+) ([a-z]+)(?: (\S.*))?")


class TraceEvent:
    __slots__ = ("ms", "pid", "role", "event", "details", "index")

    def __init__(self, ms, pid, role, event, details, index):
        self.ms, self.pid, self.role, self.event, self.details, self.index = ms, pid, role, event, details, index

    @property
    def text(self) -> str:
        """"role event details", without time and pid."""
        return f"{self.role} {self.event}" + (f" {self.details}" if self.details else "")

    def __repr__(self):
        return f"{self.ms:.3f} {self.pid} {self.text}"


def parse_trace(err: str) -> list[TraceEvent]:
    """The trace lines of a stderr, in the order they were written.
    A line starting with "trace " that is not well-formed is an error."""
    events = []
    for line in err.splitlines():
        if not line.startswith("trace "):
            continue
        m = TRACE_LINE.fullmatch(line)
        assert m, f"malformed trace line: {line!r}"
        events.append(TraceEvent(float(m[1]), int(m[2]), m[3], m[4], m[5] or "", len(events)))
    return events


# ---------------------------------------------------------------------------
# Modes

# The modes with the fork mode's teardown contract; "default" is fork
# without --mode (what the suite tested before there were modes).
CONTRACT_MODES = ["default", "threads", "poll"]


def mode_args(mode) -> list[str]:
    """forkchat's arguments for a mode name ("default": none)."""
    return [] if mode in (None, "default") else ["--mode", mode]


def run_forkchat(*args, timeout=WAIT, stdin="devnull"):
    """Runs forkchat to completion; returns the Proc (waited for)."""
    p = Forkchat(*args, stdin=stdin)
    p.wait(timeout)
    return p


# ---------------------------------------------------------------------------
# Network

def claim_port(port: int) -> bool:
    """Claims `port` for this run, across its xdist workers: false if
    another test of the run (in this worker or another) had it first."""
    try:
        os.close(os.open(os.path.join(run_dir(), f"port-{port}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return True
    except FileExistsError:
        return False


def free_port() -> int:
    """A TCP port free on 127.0.0.1 and on ::, not handed out before in this
    run, by this worker or another (the kernel may give a port again once
    its socket is closed, and each xdist worker asks it on its own)."""
    given = current_scope().given_ports
    for _ in range(100):
        s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            if port in given or not claim_port(port):
                continue
            if HAVE_IPV6:
                s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                try:
                    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s6.bind(("::", port))
                except OSError:
                    continue
                finally:
                    s6.close()
            given.add(port)
            return port
        finally:
            s4.close()
    raise RuntimeError("no free port found")


def accept_queue(port: int) -> int | None:
    """How many connections wait in the accept queue of the socket
    listening on `port` (/proc/net/tcp and tcp6: a LISTEN socket's rx_queue
    is its backlog); None if nothing listens there. A connection still in
    the queue is one the listener has not accepted: a positive sign, not
    a wait that hopes the listener is slow."""
    for table in ("/proc/net/tcp6", "/proc/net/tcp"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return int(fields[4].split(":")[1], 16)
    return None


def send_queue(local_port: int, remote_port: int) -> int | None:
    """The bytes queued in the send buffer of the TCP connection from
    `local_port` to `remote_port` on this machine (/proc/net/tcp and tcp6:
    tx_queue), sent or not but not yet acknowledged: a peer whose window is
    shut keeps them there. None if no such connection."""
    for table in ("/proc/net/tcp6", "/proc/net/tcp"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if int(local, 16) == local_port and int(remote, 16) == remote_port:
                return int(fields[4].split(":")[0], 16)
    return None


def track_socket(s: socket.socket) -> socket.socket:
    current_scope().sockets.append(s)
    return s


def listen_socket(port, host="127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = track_socket(socket.socket(family, socket.SOCK_STREAM))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
    s.bind((host, port))
    s.listen(8)
    s.settimeout(WAIT)
    return s


class Peer:
    """A raw TCP peer with a receive buffer and deadlines everywhere."""

    def __init__(self, sock: socket.socket):
        self.sock = track_socket(sock)
        self.buf = bytearray()
        self.eof = False
        self.local = sock.getsockname()
        self.remote = sock.getpeername()

    @classmethod
    def connect(cls, host, port, timeout=5.0, source=None):
        """source: a local address to connect from (e.g. 127.0.0.2)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        if source is not None:
            s.bind((source, 0))
        s.connect((host, port))
        return cls(s)

    @classmethod
    def turned_away(cls, host, port, source=None, data=b"let me in\n", timeout=3.0):
        """Connects to a server that refuses this client (listen --allow), sends
        `data`, and returns (its local port, "reset" or "eof", what it read).
        The refusal may come so fast that connect(2) itself reports the reset."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = track_socket(socket.socket(family, socket.SOCK_STREAM))
        s.settimeout(timeout)
        s.bind((source or ("::" if family == socket.AF_INET6 else "0.0.0.0"), 0))
        local_port = s.getsockname()[1]
        try:
            s.connect((host, port))
            peer = cls(s)
            peer.send(data)
            return local_port, peer.closed_by_other_side(timeout), bytes(peer.buf)
        except ConnectionResetError:
            return local_port, "reset", b""

    @classmethod
    def accept(cls, server: socket.socket, timeout=WAIT):
        server.settimeout(timeout)
        conn, _ = server.accept()
        return cls(conn)

    @property
    def port(self) -> int:
        return self.local[1]

    def send(self, data: bytes):
        self.sock.settimeout(WAIT)
        self.sock.sendall(data)

    def send_async(self, data: bytes):
        t = threading.Thread(target=self.send, args=(data,), daemon=True)
        t.start()
        return t

    def _fill(self, deadline) -> bool:
        """Reads once (before the deadline). False on timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        if not data:
            self.eof = True
        self.buf += data
        return True

    def read_more(self, timeout) -> bool:
        """Reads once into `buf`, waiting at most `timeout` s (sets `eof` at
        end of file). False if nothing came in time."""
        return self._fill(time.monotonic() + timeout)

    def expect(self, data: bytes, timeout=10.0, what=""):
        """Asserts that exactly `data` comes next."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < len(data) and not self.eof:
            if not self._fill(deadline):
                break
        got = bytes(self.buf[: len(data)])
        assert got == data, (
            f"peer expected {_short(data)} {what}, got {_short(got)} "
            f"({'EOF' if self.eof else 'timeout'} after {len(self.buf)} bytes)"
        )
        del self.buf[: len(data)]

    def read_to_eof(self, timeout=10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._fill(deadline):
                raise AssertionError(f"peer: no EOF within {timeout} s; got {_short(bytes(self.buf))}")
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def expect_eof(self, timeout=10.0, what=""):
        rest = self.read_to_eof(timeout)
        assert rest == b"", f"peer expected EOF {what}, got more data first: {_short(rest)}"

    def expect_nothing_from(self, sender: "Proc", what="", timeout=10.0):
        """Asserts that nothing (no data, no FIN) has come from `sender`,
        with a positive sign instead of a wait: the sender's session is
        asleep (it has done all it was woken for), nothing it sent is still
        in flight (its socket's send queue is empty), and nothing waits in
        ours."""
        sender.wait_asleep(timeout, what)
        far_port, near_port = self.remote[1], self.local[1]
        wait_until(lambda: not send_queue(far_port, near_port), timeout, interval=0.005,
                   what=f"the send queue of {sender.name}'s socket to empty {what}")
        if self.eof or self.buf:
            got = bytes(self.buf)
        else:
            old = self.sock.gettimeout()
            self.sock.setblocking(False)
            try:
                got = self.sock.recv(1 << 20, socket.MSG_PEEK)
                self.eof = got == b""
            except BlockingIOError:
                got = b""
            finally:
                self.sock.settimeout(old)
        assert not got and not self.eof, (
            f"peer expected nothing {what}, got {_short(got)}{' and EOF' if self.eof else ''}"
        )

    def expect_nothing_before(self, marker: bytes, send_marker, what="", timeout=10.0):
        """Asserts that nothing (no data, no EOF) comes before `marker`:
        `send_marker()` makes the other side send it after whatever is
        under test, so its arrival is the positive sign that the moment
        has passed (a wait of its own would pass whenever a bug is slower
        than the wait)."""
        send_marker()
        self.expect(marker, timeout=timeout, what=what or "(nothing before the marker)")

    def expect_nothing(self, seconds=0.3, what=""):
        """Asserts that neither data nor EOF arrives within `seconds`. Only
        where no marker can follow (see expect_nothing_before)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.eof and not self.buf:
            self._fill(deadline)
        assert not self.buf and not self.eof, (
            f"peer expected nothing {what}, got {_short(bytes(self.buf))}{' and EOF' if self.eof else ''}"
        )

    def closed_by_other_side(self, timeout=10.0) -> str:
        """Reads until EOF or reset; returns "eof" or "reset"."""
        try:
            self.read_to_eof(timeout)
            return "eof"
        except ConnectionResetError:
            return "reset"

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()

    def reset(self):
        """Closes with an RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()


def _short(data: bytes) -> str:
    if len(data) <= 200:
        return repr(data)
    return f"{len(data)} bytes {data[:60]!r}...{data[-40:]!r} sha256 {hashlib.sha256(data).hexdigest()[:16]}"


def sha(data) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# Chats

LISTEN_RE = r"forkchat: listening on :: port %d \(IPv6 and IPv4\)\n"


def start_listener(port, *args, stdin="pipe", stdout=None, env=None, expect=None) -> Forkchat:
    p = Forkchat("listen", str(port), *args, stdin=stdin, stdout=stdout, env=env)
    p.wait_err(expect or (LISTEN_RE % port))
    return p


class Chat:
    """A forkchat process connected to a raw Python peer, in `mode`."""

    def __init__(self, fc: Forkchat, peer: Peer, role: str, peer_name: str, mode: str):
        self.fc, self.peer, self.role, self.mode = fc, peer, role, mode
        self.peer_name = peer_name  # how forkchat names the peer: "127.0.0.1 port N"


def start_chat(role, stdin="pipe", *args, stdout=None, env=None, mode="default") -> Chat:
    """role "listen": forkchat listens, the Python peer connects.
    role "connect": the Python peer listens, forkchat connects.
    `mode`: a mode name ("default": fork without --mode)."""
    port = free_port()
    args = (*args, *mode_args(mode))
    if role == "listen":
        fc = start_listener(port, *args, stdin=stdin, stdout=stdout, env=env)
        peer = Peer.connect("127.0.0.1", port)
        peer_name = f"127.0.0.1 port {peer.port}"
        fc.wait_err(rf"forkchat: connection from {re.escape(peer_name)}\n")
    else:
        server = listen_socket(port)
        fc = Forkchat("connect", "127.0.0.1", str(port), *args, stdin=stdin, stdout=stdout, env=env)
        try:
            peer = Peer.accept(server, timeout=10)
        except socket.timeout:
            raise AssertionError("forkchat did not connect" + fc.describe()) from None
        server.close()
        peer_name = f"127.0.0.1 port {port}"
        fc.wait_err(rf"forkchat: connected to {re.escape(peer_name)}\n")
    return Chat(fc, peer, role, peer_name, mode)


def forkchat_pair(listen_args=(), connect_args=(), listen_stdin="pipe", connect_stdin="pipe"):
    """forkchat listen <-> forkchat connect on 127.0.0.1; returns (L, C)."""
    port = free_port()
    listener = start_listener(port, *listen_args, stdin=listen_stdin)
    client = Forkchat("connect", "127.0.0.1", str(port), *connect_args, stdin=connect_stdin)
    client.wait_err(rf"forkchat: connected to 127\.0\.0\.1 port {port}\n")
    listener.wait_err(r"forkchat: connection from 127\.0\.0\.1 port \d+\n")
    return listener, client


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"!!! {name} is not installed: the test that needs {name} did NOT run !!!"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: a missing tool is a failure)")
        pytest.skip(message)
    return path
