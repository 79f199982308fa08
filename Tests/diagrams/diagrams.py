#!/usr/bin/env python3
"""make diagrams: sequence diagrams of forkchat's endings, drawn from real runs.

Each scenario runs two real forkchat processes with --trace, A listening and
B connecting on 127.0.0.1, each on its own pseudo-terminal (or a pipe, when
the scenario says so), and plays the person at each keyboard (typing, Ctrl-D,
Ctrl-C, kill). From the two traces it draws an SVG sequence diagram: one
lifeline per process of each side (the main process, then each child from its
fork), the trace events as marks and arrows (fork, shutdown and the FIN it
sends, SIGCHLD, kill, waitpid, exit), and the time of each event on the axis.
With the chat screen (the `two-writers` scenario), each screen update a
process writes (`draw`, one write(2) each) is an arrow from that process to
its terminal. Nothing is drawn by hand. Beside each NAME.svg it writes NAME.txt: the two
traces merged in time order, for a text-only terminal.

    python3 Tests/diagrams/diagrams.py [--port N] [--only NAME] FORKCHAT OUTDIR

Adding a scenario: write a function that drives the two sides (see
`input_ends`) and decorate it with @scenario(name, title).

Clocks. Each trace line gives milliseconds since its own process started. The
generator stamps every stderr line when it arrives (CLOCK_MONOTONIC, as
forkchat's clock): a side's start is at most "arrival - ms" for each of its
lines, and the smallest such value is taken (the lines arrive within a few
microseconds of being written). Each FIN or RST must arrive after it was
sent: if the estimate says otherwise, the receiving side is moved later by
the difference (a few microseconds).
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import html
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

TRACE = re.compile(r"trace (\d+\.\d{3}) (\d+) ([a-z]+) ([a-z]+)(?: (.*))?")
SCENARIOS: list[tuple[str, str, object]] = []


def scenario(name, title):
    def register(function):
        SCENARIOS.append((name, title, function))
        return function

    return register


def now() -> float:
    return time.monotonic()


# ---------------------------------------------------------------------------
# Running the two sides


class Line:
    """One line of a side's stderr: a trace event, a notice, or an action of
    the person at the keyboard (typing, Ctrl-C, kill)."""

    def __init__(self, side, kind, text, arrival, pid=None, role="", event="", details="", ms=None):
        self.side, self.kind, self.text, self.arrival = side, kind, text, arrival
        self.pid, self.role, self.event, self.details, self.ms = pid, role, event, details, ms
        self.time = arrival  # aligned later (seconds, CLOCK_MONOTONIC)
        self.target = None  # an action: the pid it reaches (None: the whole group)
        self.effect = None  # an action: the trace event it causes
        self.row_time = None  # where the row is drawn, if not at `time` (see order_rows)

    @property
    def label(self) -> str:
        if self.kind == "trace":
            return f"{self.event} {self.details}".strip()
        return self.text


class Side:
    """A forkchat process (and its child) on a terminal or a pipe, stderr
    collected line by line with the time each line arrived."""

    def __init__(self, run, letter, argv, stdin="pty", size=(12, 60)):
        self.run, self.letter, self.argv = run, letter, argv
        self.lines: list[Line] = []
        self.screen = bytearray()
        self.cond = threading.Condition()
        self.master = None
        self.readers: list[threading.Thread] = []
        self.spawned = now()
        if stdin == "pty":
            master, slave = pty.openpty()
            self.master = master
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))  # rows, columns

            def controlling_terminal():
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

            self.popen = subprocess.Popen(
                argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE, preexec_fn=controlling_terminal,
                env=dict(os.environ, NO_COLOR="1", TERM="xterm"), close_fds=True,
            )
            os.close(slave)
            self._read(master, self._screen)
        else:
            self.popen = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, env=dict(os.environ, NO_COLOR="1"),
            )
            self._read(self.popen.stdout.fileno(), self._screen)
        self.pid = self.popen.pid
        self._read(self.popen.stderr.fileno(), self._stderr)

    def _read(self, fd, sink):
        def loop():
            pending = b""
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError as e:
                    if e.errno == errno.EINTR:
                        continue
                    data = b""
                arrival = now()
                with self.cond:
                    pending = sink(pending + data, arrival, not data)
                    self.cond.notify_all()
                if not data:
                    return

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self.readers.append(thread)

    def _screen(self, data, arrival, ended):
        self.screen += data
        return b""

    def _stderr(self, data, arrival, ended):
        *complete, rest = data.split(b"\n")
        for raw in complete + ([rest] if ended and rest else []):
            text = raw.decode(errors="replace")
            m = TRACE.fullmatch(text)
            if m:
                self.lines.append(
                    Line(self.letter, "trace", text, arrival, int(m[2]), m[3], m[4], m[5] or "", float(m[1]))
                )
            else:
                self.lines.append(Line(self.letter, "notice", text, arrival))
        return b"" if ended else rest

    def wait_err(self, pattern, timeout=10.0):
        """Waits until a stderr line matches `pattern` (a regex)."""
        self._wait(lambda: any(re.search(pattern, l.text) for l in self.lines), f"stderr {pattern!r}", timeout)

    def wait_screen(self, text: str, timeout=10.0):
        self._wait(lambda: text.encode() in self.screen, f"on screen {text!r}", timeout)

    def _wait(self, ready, what, timeout):
        deadline = now() + timeout
        with self.cond:
            while not ready():
                if now() > deadline:
                    raise RuntimeError(f"{self.letter}: expected {what}; stderr so far:\n" + self.stderr_text())
                self.cond.wait(0.05)

    def stderr_text(self):
        return "".join(l.text + "\n" for l in self.lines)

    def child(self) -> int:
        """The pid of the forked child (from the trace's fork event)."""
        self.wait_err(r" fork child=\d+")
        return next(int(l.details.split("=")[1]) for l in self.lines if l.event == "fork")

    def act(self, label, target=None, effect=None):
        """Records what the person does, as a line of this side; `effect`:
        the trace event it causes ("eof stdin"), which cannot come before."""
        line = Line(self.letter, "action", label, now())
        line.target, line.effect = target, effect
        with self.cond:
            self.lines.append(line)

    def type(self, text: str, label=None):
        self.act(label or f"types {text.rstrip()!r}", target=self.child())
        if self.master is not None:
            os.write(self.master, text.encode())
        else:
            self.popen.stdin.write(text.encode())
            self.popen.stdin.flush()

    def ctrl_d(self):
        self.act("Ctrl-D", target=self.child(), effect="eof stdin")
        os.write(self.master, b"\x04")

    def close_pipe(self):
        self.act("the pipe ends", target=self.child(), effect="eof stdin")
        self.popen.stdin.close()

    def ctrl_c(self):
        self.act("Ctrl-C: SIGINT to the foreground group", effect="signal SIGINT")
        os.write(self.master, b"\x03")

    def kill(self, pid, sig, who):
        effect = "signal SIGCHLD" if pid != self.pid and sig in (signal.SIGKILL, signal.SIGTERM) else None
        self.act(f"kill -{signal.Signals(sig).name[3:]} {who}", target=pid, effect=effect)
        os.kill(pid, sig)

    def seen_ending(self, pid, label, timeout=5.0):
        """Waits until process `pid` has ended (a zombie, or gone), and
        records it as a line of that process: what the generator saw."""
        deadline = now() + timeout
        while now() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except FileNotFoundError:
                break
            time.sleep(0.001)
        line = Line(self.letter, "seen", label, now(), pid=pid)
        with self.cond:
            self.lines.append(line)

    def wait(self, timeout=15.0):
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            raise RuntimeError(f"{self.letter} did not end within {timeout} s:\n" + self.stderr_text()) from None
        for reader in self.readers:  # stderr ends once every process of the side is gone
            reader.join(5)


class Run:
    """One scenario's run: the two sides and their command lines."""

    def __init__(self, forkchat, port):
        self.forkchat, self.port = forkchat, port
        self.sides: list[Side] = []

    # On a terminal, the line-by-line chat (--plain): these pictures are
    # about processes and the end of a chat; `screen=True` for the chat
    # screen (its trace goes to a pipe, so the screen stays up).
    def listen(self, *args, stdin="pty", screen=False) -> Side:
        plain = ["--plain"] if stdin == "pty" and not screen else []
        argv = [self.forkchat, "listen", str(self.port), *args, *plain, "--trace"]
        side = Side(self, "A", argv, stdin)
        self.sides.append(side)
        side.wait_err(rf"listening on .* port {self.port}")
        return side

    def connect(self, *args, stdin="pty", screen=False) -> Side:
        plain = ["--plain"] if stdin == "pty" and not screen else []
        argv = [self.forkchat, "connect", "127.0.0.1", str(self.port), *args, *plain, "--trace"]
        side = Side(self, "B", argv, stdin)
        self.sides.append(side)
        side.wait_err(r"connected to")
        self.sides[0].wait_err(r"connection from")
        return side

    def pair(self, a_stdin="pty", b_stdin="pty", screen=False):
        return self.listen(stdin=a_stdin, screen=screen), self.connect(stdin=b_stdin, screen=screen)

    def finish(self):
        for side in self.sides:
            side.wait()
        reap_orphans()


def reap_orphans():
    """A child whose parent was killed is reparented to us (a subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ---------------------------------------------------------------------------
# The scenarios (docs/design.md, "Teardown, ending by ending")


@scenario("input-ends", "B's input ends (Ctrl-D): FIN, and each side closes in turn")
def input_ends(run):
    a, b = run.pair()
    b.type("hello from B\n")
    a.wait_screen("< hello from B")
    a.type("hi B, this is A\n")
    b.wait_screen("< hi B, this is A")
    b.ctrl_d()


@scenario("peer-closes", "A types the quit word; B, reading a pipe, still sends the rest of its input")
def peer_closes(run):
    a, b = run.pair(b_stdin="pipe")
    b.type("first line from B's pipe\n", label="the pipe gives a line")
    a.wait_screen("< first line")
    a.type("exit\n")
    b.wait_err(r"parent eof socket")
    b.type("last line, after A's FIN\n", label="the pipe gives a line")
    a.wait_screen("< last line")
    b.close_pipe()


@scenario("ctrl-c", "Ctrl-C in A: SIGINT to A's two processes, and A's socket closes")
def ctrl_c(run):
    a, b = run.pair()
    b.type("hello from B\n")
    a.wait_screen("< hello from B")
    a.ctrl_c()


@scenario("reset", "A is killed while B's line waits unread in A's socket: the kernel resets the connection")
def reset(run):
    a, b = run.pair()
    child = a.child()  # (once the parent has said so: stopped, it says nothing)
    a.kill(a.pid, signal.SIGSTOP, "A's parent")
    b.type("hello, are you there?\n")
    time.sleep(0.2)
    a.kill(a.pid, signal.SIGKILL, "A's parent")
    a.seen_ending(child, "killed too: SIGKILL (PR_SET_PDEATHSIG)")


@scenario("child-killed", "B's sending process is killed: B's parent sends the FIN in its place")
def child_killed(run):
    a, b = run.pair()
    b.type("hello from B\n")
    a.wait_screen("< hello from B")
    b.kill(b.child(), signal.SIGKILL, "B's child")


@scenario("two-writers", "The chat screen: A's child draws the input line, A's parent the conversation, "
          "each update one write(2)")
def two_writers(run):
    a, b = run.pair(screen=True)
    a.type("I am typing", label="types 'I am typing' (no Enter)")
    a.wait_screen("> I am typing")
    b.type("hello A\n")
    a.wait_screen("127.0.0.1: hello A")
    a.type(" a line\n", label="types ' a line', Enter")
    b.wait_screen("127.0.0.1: I am typing a line")
    a.ctrl_d()


# ---------------------------------------------------------------------------
# Clocks and causes


def align(sides):
    """Puts every line of every side on the generator's clock."""
    for side in sides:
        # Every line arrives after the trace lines written before it.
        bounds, written = [], None
        for l in side.lines:
            if l.kind == "trace":
                written = max(written or 0.0, l.ms)
            if l.kind in ("trace", "notice") and written is not None:
                bounds.append(l.arrival - written / 1000)
        side.start = min(bounds)
        # ... and the process started after it was spawned, and each effect
        # of the person's actions came after the action.
        side.floor = side.spawned
        for i, action in enumerate(side.lines):
            effect = next((l for l in side.lines[i + 1:] if l.kind == "trace" and action.effect
                           and f"{l.event} {l.details}" == action.effect), None)
            if effect is not None:
                side.floor = max(side.floor, action.arrival - effect.ms / 1000)
        assert side.start >= side.floor, f"{side.letter}: the trace contradicts the clock"
    for side in sides:
        place(side)


CHILD_NOTICES = ("forkchat: write to ", "forkchat: read from standard input", "forkchat: shutdown to ")


def place(side):
    """Trace lines at their own time; a notice, which has none, just before
    the next trace line of its side (it was written before it), or when it
    arrived if that is earlier. Notices are the main process's, except the
    errors of the sending child."""
    lines = side.lines
    for l in lines:
        if l.kind == "trace":
            l.time = side.start + l.ms / 1000
    children = [int(l.details.split("=")[1]) for l in lines if l.kind == "trace" and l.event == "fork"]
    for i, l in enumerate(lines):
        if l.kind != "notice":
            continue
        following = next((n for n in lines[i + 1:] if n.kind == "trace"), None)
        l.time = min(l.arrival, following.time) - 1e-6 if following is not None else l.arrival
        l.pid = children[-1] if children and l.text.startswith(CHILD_NOTICES) else side.pid


class Arrow:
    def __init__(self, kind, src, dst, label):
        self.kind, self.src, self.dst, self.label = kind, src, dst, label


def first_fin(side, peer_end):
    """Where a side's FIN (or RST) leaves, as far as its trace tells: its
    first shutdown; or else the close of its socket, which is not traced:
    drawn from the last event of the main process before the peer read the
    end of file ("FIN (close)"); or, when the side was killed with unread
    data, the end of its last process (RST)."""
    for l in side.lines:
        if l.kind == "trace" and l.event == "shutdown":
            return l, "FIN"
    if any(l.kind == "action" and "KILL" in l.text and l.target == side.pid for l in side.lines):
        last = [l for l in side.lines if l.kind in ("action", "seen") and ("KILL" in l.text or l.kind == "seen")]
        return last[-1], "RST"
    before = [l for l in side.lines
              if l.kind == "trace" and l.pid == side.pid and peer_end is not None and l.time < peer_end.time]
    return (before[-1], "FIN (close)") if before else (None, None)


def causes(sides) -> list[Arrow]:
    """The arrows between lines: FIN or RST between the sides, the
    handshake, fork, kill, SIGCHLD and the person's actions."""
    arrows = []
    a, b = sides
    for here, there in ((a, b), (b, a)):
        end = next(
            (l for l in here.lines if (l.kind == "trace" and l.event == "eof" and l.details == "socket")
             or (l.kind == "notice" and "reset by peer" in l.text)), None)
        fin, kind = first_fin(there, end)
        if fin is not None and end is not None:
            arrows.append(Arrow("rst" if kind == "RST" else "fin", fin, end, kind))
    connect = next((l for l in b.lines if l.event == "connect"), None)
    accept = next((l for l in a.lines if l.event == "accept"), None)
    if connect and accept:
        arrows.append(Arrow("handshake", connect, accept, "TCP handshake"))
    for side in sides:
        # A child's end: its exit, or the kill that ended it.
        ends = {}
        for l in side.lines:
            if l.kind == "trace" and l.event == "exit" and l.pid != side.pid:
                ends.setdefault(l.pid, l)
            elif l.kind == "action" and l.target not in (None, side.pid) and l.text.startswith("kill -KILL"):
                ends.setdefault(l.target, l)
        for l in side.lines:
            if l.kind == "trace" and l.event == "signal" and l.details == "SIGCHLD":
                child = next((p for p in ends if ends[p].time <= l.time), None)
                if child is not None:
                    arrows.append(Arrow("signal", ends.pop(child), l, "SIGCHLD"))
    return arrows


def refine(sides, arrows):
    """Each side's start is an upper bound, late by how long its lines took
    to arrive, which differs between the sides. What a process did before
    its FIN left happened before the peer read the end of file: if the
    estimates say otherwise, the sending side is moved earlier (never
    before its floor)."""
    by_letter = {side.letter: side for side in sides}
    for _ in range(3):
        for arrow in arrows:
            if arrow.kind != "fin":
                continue
            before = arrow.src
            if arrow.src.event == "shutdown":  # stamped after the FIN left: the line before it
                lines = by_letter[arrow.src.side].lines
                index = next(i for i, l in enumerate(lines) if l is arrow.src)
                before = next((l for l in reversed(lines[:index])
                               if l.kind in ("trace", "notice") and l.pid == arrow.src.pid), None)
            if before is None or before.time <= arrow.dst.time:
                continue
            side = by_letter[before.side]
            side.start = max(side.floor, side.start - (before.time - arrow.dst.time) - 1e-6)
            place(side)


def order_rows(arrows):
    """A FIN arrives after it leaves, but a shutdown is stamped when
    shutdown(2) has returned, after its FIN has left: the peer may read the
    end of file before that stamp. Such a row is drawn just before the
    arrival, its time marked with "*". (Times are otherwise late by the
    same small amount on both sides, since each side's start is taken from
    when its lines arrived: see the module's doc.)"""
    for arrow in arrows:
        if arrow.kind == "fin" and arrow.dst.time <= arrow.src.time:
            arrow.src.row_time = arrow.dst.time - 1e-7


# ---------------------------------------------------------------------------
# Drawing

ROW = 22
TOP = 96
COLUMN = 150
FONT = "font-family='DejaVu Sans Mono,Menlo,Consolas,monospace' font-size='11'"
COLOURS = {"fin": "#1f6feb", "rst": "#cf222e", "handshake": "#2da44e", "signal": "#8250df",
           "fork": "#24292f", "kill": "#cf222e", "action": "#9a6700", "draw": "#0a7f86"}


def lifelines(sides):
    """Columns, left to right: A's keyboard, A's child(ren), A's main
    process, B's main process, B's child(ren), B's keyboard (with the chat
    screen: the terminal, keyboard and screen)."""
    columns = []
    a, b = sides
    a_children = [int(l.details.split("=")[1]) for l in a.lines if l.event == "fork"]
    b_children = [int(l.details.split("=")[1]) for l in b.lines if l.event == "fork"]
    def person(side):
        drawn = any(l.kind == "trace" and l.event == "draw" for l in side.lines)
        return f"{side.letter}'s terminal" if drawn else f"person at {side.letter}"

    columns.append(("A", "keyboard", person(a)))
    columns += [("A", pid, f"A: child, {pid}") for pid in a_children]
    columns.append(("A", a.pid, f"A: {a.argv[1]}, {a.pid}"))
    columns.append(("B", b.pid, f"B: {b.argv[1]}, {b.pid}"))
    columns += [("B", pid, f"B: child, {pid}") for pid in b_children]
    columns.append(("B", "keyboard", person(b)))
    return {key[:2]: (i, key[2]) for i, key in enumerate(columns)}


def draw(name, title, sides, arrows) -> str:
    cols = lifelines(sides)
    x = {key: 110 + COLUMN * i + COLUMN // 2 for key, (i, _) in cols.items()}
    lines = sorted((l for s in sides for l in s.lines if not l.text.startswith("forkchat: type a line")),
                   key=row_key)
    t0 = min(l.time for l in lines)
    rows, y, previous = {}, TOP, None
    gaps = []
    for l in lines:
        if previous is not None and l.time - previous > 0.1:
            gaps.append((y, l.time - previous))
            y += ROW
        rows[id(l)] = y
        y += ROW
        previous = l.time
    height = y + 40
    width = 110 + COLUMN * len(cols) + 20
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {FONT}>",
        f"<title>{html.escape(title)}</title>",
        "<defs>" + "".join(
            f"<marker id='head-{k}' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
            f"orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='{c}'/></marker>"
            for k, c in COLOURS.items()) + "</defs>",
        "<style>text.h{paint-order:stroke;stroke:#fff;stroke-width:3px}</style>",
        f"<rect width='{width}' height='{height}' fill='#fff'/>",
        f"<text x='10' y='22' font-size='14' font-weight='bold'>{html.escape(title)}</text>",
        f"<text x='10' y='40' fill='#57606a'>A: {html.escape(command(sides[0]))}   "
        f"B: {html.escape(command(sides[1]))}   (ms on the left, from A's first event)</text>",
    ]
    # Lifelines: from the top (or the fork) to the exit (or the kill).
    for key, (i, label) in cols.items():
        side, who = key
        cx = x[key]
        start = TOP - 8
        fork = next((l for l in lines if l.event == "fork" and l.side == side and l.details == f"child={who}"), None)
        if fork is not None:
            start = rows[id(fork)]
        ends = [rows[id(l)] for l in lines if l.side == side and (
            (l.kind == "trace" and l.pid == who and l.event == "exit")
            or (l.kind == "action" and l.target == who and "KILL" in l.text)
            or (l.kind == "seen" and l.pid == who)
            or (l.kind == "trace" and l.event == "kill" and l.details.split()[0] == str(who))
            or (l.kind == "trace" and l.event == "waitpid" and l.details.split()[0] == str(who)))]
        end = min(ends) if ends and who != "keyboard" else height - 20
        dash = " stroke-dasharray='4 3'" if who == "keyboard" else ""
        out.append(f"<line x1='{cx}' y1='{start}' x2='{cx}' y2='{end}' stroke='#8c959f' stroke-width='1.5'{dash}/>")
        if ends and who != "keyboard":
            out.append(f"<path d='M{cx - 5},{end - 5} L{cx + 5},{end + 5} M{cx - 5},{end + 5} L{cx + 5},{end - 5}' "
                       "stroke='#24292f' stroke-width='2'/>")
        out.append(f"<rect x='{cx - COLUMN // 2 + 6}' y='{TOP - 40}' width='{COLUMN - 12}' height='24' rx='4' "
                   f"fill='{'#f6f8fa' if who == 'keyboard' else '#ddf4ff'}' stroke='#8c959f'/>")
        out.append(f"<text x='{cx}' y='{TOP - 24}' text-anchor='middle'>{html.escape(label)}</text>")
    for gy, gap in gaps:
        out.append(f"<line x1='70' y1='{gy + 6}' x2='{width - 10}' y2='{gy + 6}' stroke='#d0d7de' "
                   "stroke-dasharray='2 4'/>")
        out.append(f"<text x='64' y='{gy + 10}' text-anchor='end' fill='#57606a'>… {gap:.1f} s</text>")
    for l in lines:
        ly = rows[id(l)]
        star = "*" if l.row_time is not None else ""
        out.append(f"<text x='64' y='{ly + 4}' text-anchor='end' fill='#57606a'>{(l.time - t0) * 1000:.3f}{star}</text>")
        out.append(render_line(l, ly, x, rows))
    for arrow in arrows:
        out.append(render_arrow(arrow, x, rows))
    if any(l.row_time is not None for l in lines):
        out.append(f"<text x='10' y='{height - 8}' fill='#57606a'>* stamped when shutdown() returned: its FIN "
                   "had already left, and reached the peer before that stamp</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def row_key(l):
    return l.row_time if l.row_time is not None else l.time


def command(side):
    return " ".join(["forkchat", *side.argv[1:]]) + ("" if side.master is not None else " < pipe")


def column_of(l, x):
    if l.kind == "action":
        return x[(l.side, "keyboard")]
    return x.get((l.side, l.pid), x[(l.side, next(k for s, k in x if s == l.side and k != "keyboard"))])


def render_line(l, ly, x, rows) -> str:
    cx = column_of(l, x)
    title = f"<title>{html.escape(l.text)}</title>"
    if l.kind == "action":
        target = x.get((l.side, l.target)) if l.target is not None else None
        targets = [target] if target else [x[k] for k in x if k[0] == l.side and k[1] != "keyboard"]
        parts = [f"<g class='action'>{title}"]
        for tx in targets:
            parts.append(arrow_path(cx, ly, tx, ly, "action"))
        anchor, tx = ("start", cx + 8) if l.side == "A" else ("end", cx - 8)
        parts.append(f"<text class='h' x='{tx}' y='{ly - 4}' text-anchor='{anchor}' fill='{COLOURS['action']}'>"
                     f"{html.escape(l.text)}</text></g>")
        return "".join(parts)
    if l.kind == "seen":
        anchor, tx = ("end", cx - 10) if l.side == "A" else ("start", cx + 10)
        return (f"<g class='seen'>{title}<text class='h' x='{tx}' y='{ly + 4}' text-anchor='{anchor}' "
                f"fill='#cf222e'>{html.escape(l.text)}</text></g>")
    if l.kind == "notice":
        text = l.text.removeprefix("forkchat: ")
        anchor, tx = ("end", cx - 10) if l.side == "A" else ("start", cx + 10)
        return (f"<g class='notice'>{title}<text class='h' x='{tx}' y='{ly + 4}' text-anchor='{anchor}' "
                f"fill='#57606a' font-style='italic'>“{html.escape(text)}”</text></g>")
    parts = [f"<g class='event' data-event='{l.event}'>{title}"]
    if l.event in ("fork", "kill", "draw"):  # to the child it made or signalled, or to the terminal it drew on
        if l.event == "draw":
            tx = x[(l.side, "keyboard")]
        else:
            child = int(l.details.split("=")[1]) if l.event == "fork" else int(l.details.split()[0])
            tx = x.get((l.side, child), cx)
        parts.append(arrow_path(cx, ly, tx, ly, l.event))
    parts.append(f"<rect x='{cx - 4}' y='{ly - 4}' width='8' height='8' fill='#24292f'/>")
    label = {"fork": f"fork() → {l.details}", "kill": f"kill {l.details}"}.get(l.event, l.label)
    anchor, tx_label = ("end", cx - 10) if l.side == "A" else ("start", cx + 10)
    if l.event in ("fork", "kill", "draw"):  # the label sits on the arrow
        anchor, tx_label = "middle", (cx + tx) // 2
        parts.append(f"<text class='h' x='{tx_label}' y='{ly - 4}' text-anchor='{anchor}'>{html.escape(label)}</text>")
    else:
        parts.append(f"<text class='h' x='{tx_label}' y='{ly + 4}' text-anchor='{anchor}'>{html.escape(label)}</text>")
    parts.append("</g>")
    return "".join(parts)


def arrow_path(x1, y1, x2, y2, kind, dashed=False) -> str:
    if x1 == x2:
        return ""
    shrink = 6 if x2 > x1 else -6
    dash = " stroke-dasharray='5 3'" if dashed else ""
    return (f"<line x1='{x1}' y1='{y1}' x2='{x2 - shrink}' y2='{y2}' stroke='{COLOURS[kind]}' stroke-width='1.5' "
            f"marker-end='url(#head-{kind})'{dash}/>")


def render_arrow(arrow, x, rows) -> str:
    x1, y1 = column_of(arrow.src, x), rows[id(arrow.src)]
    x2, y2 = column_of(arrow.dst, x), rows[id(arrow.dst)]
    colour = COLOURS[arrow.kind]
    mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2
    return (f"<g class='arrow {arrow.kind}'>{arrow_path(x1, y1, x2, y2, arrow.kind, arrow.kind != 'fin')}"
            f"<text class='h' x='{mid_x:.0f}' y='{mid_y - 4:.0f}' text-anchor='middle' fill='{colour}' "
            f"font-weight='bold'>{html.escape(arrow.label)}</text></g>")


def merged_trace(name, title, sides) -> str:
    lines = sorted((l for s in sides for l in s.lines), key=row_key)
    t0 = min(l.time for l in lines)
    out = [f"# {name}: {title}"]
    out += [f"# {s.letter}: {command(s)}" for s in sides]
    out.append("# ms from A's first event, side, then the line as printed; [what the person did, what was seen]")
    for l in lines:
        text = {"action": f"[{l.text}]", "seen": f"[seen: {l.pid} {l.text}]"}.get(l.kind, l.text)
        out.append(f"{(l.time - t0) * 1000:10.3f} {l.side}  {text}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------


def free_port(preferred=8080) -> int:
    for port in (preferred, 0):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come to us, to be reaped


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("forkchat")
    parser.add_argument("outdir")
    parser.add_argument("--port", type=int, default=None, help="default: 8080 if free, else any free port")
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    options = parser.parse_args()
    become_subreaper()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    os.makedirs(options.outdir, exist_ok=True)
    for name, title, function in SCENARIOS:
        if options.only and name not in options.only:
            continue
        run = Run(os.path.abspath(options.forkchat), options.port or free_port())
        try:
            function(run)
            run.finish()
        finally:
            for side in run.sides:
                if side.popen.poll() is None:
                    os.killpg(side.pid, signal.SIGKILL)
                    side.popen.wait()
            reap_orphans()
            for side in run.sides:
                if side.master is not None:
                    os.close(side.master)
        align(run.sides)
        arrows = causes(run.sides)
        refine(run.sides, arrows)
        order_rows(arrows)
        with open(os.path.join(options.outdir, f"{name}.svg"), "w") as f:
            f.write(draw(name, title, run.sides, arrows))
        with open(os.path.join(options.outdir, f"{name}.txt"), "w") as f:
            f.write(merged_trace(name, title, run.sides))
        print(f"{options.outdir}/{name}.svg: {sum(len(s.lines) for s in run.sides)} lines, {len(arrows)} arrows")


if __name__ == "__main__":
    main()
