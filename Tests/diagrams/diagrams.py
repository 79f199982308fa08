#!/usr/bin/env python3
"""make diagrams: sequence diagrams of forkchat's endings, drawn from real runs.

Each scenario runs two real forkchat processes with --trace, A listening and
B connecting on 127.0.0.1, each on its own pseudo-terminal (or a pipe, when
the scenario says so), and plays the person at each keyboard (typing, Ctrl-D,
Ctrl-C, kill), watching what each terminal shows. From the two traces it
draws an SVG sequence diagram, in English (OUTDIR) and in French (--fr DIR),
with one lifeline per process of each side (père and fils, parent and
child) and one for each side's terminal:
- the data: a line typed at B goes from the keyboard to B's child, through
  the socket to A's parent, and to A's terminal when the generator saw it
  there (with the chat screen, the `draw` that showed it);
- the TCP handshake, done by the kernels before connect() returns and
  before accept() is called; fork; each FIN (from a shutdown, or from the
  close at a side's last exit) and RST; kill and Ctrl-C's SIGINT (to both
  processes of the foreground group); SIGCHLD, from where the child ended;
- each process's end (✕): its exit, the kill that ended it, or the signal
  its waitpid status names (a child dead of SIGINT ends on the Ctrl-C row).
Nothing is drawn by hand. At most 20 rows of events (a few events of one
process share a row; then two rows of different sides share a height),
1280 px wide, 16 px text (DejaVu Sans Mono, so that each label's box is
known), every label placed clear of the lifelines, the other labels and the
arrows. Beside each NAME.svg, NAME.txt: the two traces merged in time order,
for a text-only terminal. Then `processes-descriptors` (French
`processus-descripteurs`): both sides' processes after fork and their
descriptors, read from /proc/PID/fd (readlink, fdinfo) and /proc/net/tcp of
a running chat.

    python3 Tests/diagrams/diagrams.py [--port N] [--only NAME] FORKCHAT OUTDIR [--fr DIR]

Adding a scenario: write a function that drives the two sides (see
`input_ends`) and decorate it with @scenario(name, (English title, French
title)).

Clocks: one clock, the generator's CLOCK_MONOTONIC. Each trace line gives
milliseconds since its own process started; the generator stamps every
stderr line when it arrives: a side's start is at most "arrival - ms" for
each of its lines (the smallest is taken), and at least when it was spawned
and "action - ms" for the effect of each action of the person (Ctrl-D
before the end of input). Causes come first: the line before a FIN (or the
last line, for a FIN at the close) before the peer's end of file, B's socket
before A's accept, a sender's child started before its line shows: a side is
moved earlier to respect them, never below its lower bound. What the two
clocks still leave in disagreement is settled row by row, marked "*": a
row drawn just before what it caused, or that row just after its cause
(never one event of a process past another of its own).
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
import termios
import threading
import time

TRACE = re.compile(r"trace (\d+\.\d{3}) (\d+) ([a-z]+) ([a-z]+)(?: (.*))?")
SCENARIOS: list[tuple[str, str, object]] = []


def scenario(name, titles):
    def register(function):
        SCENARIOS.append((name, titles, function))
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
        self.key, self.args = "", {}  # an action: what it is, for the drawing
        self.effect = None  # an action: the trace event it causes


class Side:
    """A forkchat process (and its child) on a terminal or a pipe, stderr
    collected line by line with the time each line arrived."""

    def __init__(self, run, letter, argv, stdin="pty", size=(12, 60)):
        self.run, self.letter, self.argv = run, letter, argv
        self.lines: list[Line] = []
        self.screen = bytearray()
        self.screen_log: list[tuple[float, int]] = []  # (arrival, bytes on screen so far)
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
        self.screen_log.append((arrival, len(self.screen)))
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

    def shown(self, text: str, timeout=10.0):
        """Waits until `text` is on this side's terminal (or stdout pipe),
        and records it as a line of the main process, at the time the bytes
        that completed it arrived: what the person at that side sees."""
        self.wait_screen(text, timeout)
        with self.cond:
            end = self.screen.find(text.encode()) + len(text.encode())
            arrival = next(t for t, total in self.screen_log if total >= end)
            self.lines.append(Line(self.letter, "shown", text, arrival, pid=self.pid))

    def child(self) -> int:
        """The pid of the forked child (from the trace's fork event)."""
        self.wait_err(r" fork child=\d+")
        return next(int(l.details.split("=")[1]) for l in self.lines if l.event == "fork")

    def act(self, label, target=None, effect=None, key="", **args):
        """Records what the person does, as a line of this side; `effect`:
        the trace event it causes ("eof stdin"), which cannot come before;
        `key` and `args`: what the drawing says of it (see SAY)."""
        line = Line(self.letter, "action", label, now())
        line.target, line.effect, line.key, line.args = target, effect, key, args
        with self.cond:
            self.lines.append(line)

    def type(self, text: str, label=None):
        self.act(label or f"types {text.rstrip()!r}", target=self.child(), key="types",
                 text=text.rstrip("\n"), enter=text.endswith("\n"))
        if self.master is not None:
            os.write(self.master, text.encode())
        else:
            self.popen.stdin.write(text.encode())
            self.popen.stdin.flush()

    def ctrl_d(self):
        self.act("Ctrl-D", target=self.child(), effect="eof stdin", key="ctrl-d")
        os.write(self.master, b"\x04")

    def close_pipe(self):
        self.act("the pipe ends", target=self.child(), effect="eof stdin", key="pipe-ends")
        self.popen.stdin.close()

    def ctrl_c(self):
        self.act("Ctrl-C: SIGINT to the foreground group", effect="signal SIGINT", key="ctrl-c")
        os.write(self.master, b"\x03")

    def kill(self, pid, sig, who):
        effect = "signal SIGCHLD" if pid != self.pid and sig in (signal.SIGKILL, signal.SIGTERM) else None
        self.act(f"kill -{signal.Signals(sig).name[3:]} {who}", target=pid, effect=effect, key="kill",
                 sig=signal.Signals(sig).name, who=who)
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
# The scenarios (docs/design.md, "Teardown, ending by ending"). Each titled
# in English and in French; the lines typed are French, as in the lab.


@scenario("input-ends", ("B's input ends (Ctrl-D): FIN, and each side closes in turn",
                         "L'entrée de B se termine (Ctrl-D) : FIN, puis chaque côté ferme à son tour"))
def input_ends(run):
    a, b = run.pair()
    b.type("salut A\n")
    a.shown("< salut A")
    b.ctrl_d()


@scenario("peer-closes", ("A types the quit word; B, reading a pipe, still sends the rest of its input",
                          "A tape le mot de fin ; B, qui lit un tube, envoie encore la suite : demi-fermeture"))
def peer_closes(run):
    a, b = run.pair(b_stdin="pipe")
    b.type("ligne 1\n")
    a.shown("< ligne 1")
    a.type("exit\n")
    b.wait_err(r"parent eof socket")
    b.type("ligne 2\n")
    a.shown("< ligne 2")
    b.close_pipe()


@scenario("ctrl-c", ("Ctrl-C in A: SIGINT to A's two processes, and A's socket closes",
                     "Ctrl-C dans A : SIGINT aux deux processus de A, puis la socket de A se ferme"))
def ctrl_c(run):
    a, b = run.pair()
    b.type("salut A\n")
    a.shown("< salut A")
    a.ctrl_c()


@scenario("reset", ("A is killed while B's line waits unread in A's socket: the kernel resets the connection",
                    "A est tué pendant que la ligne de B attend, non lue, dans sa socket : le noyau envoie RST"))
def reset(run):
    a, b = run.pair()
    child = a.child()  # (once the parent has said so: stopped, it says nothing)
    a.kill(a.pid, signal.SIGSTOP, "A's parent")
    b.type("tu es là ?\n")
    time.sleep(0.2)
    a.kill(a.pid, signal.SIGKILL, "A's parent")
    a.seen_ending(child, "killed too: SIGKILL (PR_SET_PDEATHSIG)")


@scenario("child-killed", ("B's sending process (its child) is killed: B's parent sends the FIN in its place",
                           "Le fils de B, qui envoie, est tué : le père de B envoie le FIN à sa place"))
def child_killed(run):
    a, b = run.pair()
    b.type("salut A\n")
    a.shown("< salut A")
    b.kill(b.child(), signal.SIGKILL, "B's child")


@scenario("two-writers", ("The chat screen: B's line arrives while A types; A's child draws the input line, "
                          "A's parent the conversation",
                          "L'écran de conversation : la ligne de B arrive pendant que A tape ; le fils de A "
                          "dessine la saisie, le père la conversation"))
def two_writers(run):
    a, b = run.pair(screen=True)
    a.type("je tape", label="types 'je tape' (no Enter)")
    a.wait_screen("> je tape")
    b.type("salut A\n")
    a.shown("127.0.0.1: salut A")
    a.type(" une ligne\n", label="types ' une ligne', Enter")
    b.shown("127.0.0.1: je tape une ligne")
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
    refine(sides)


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


def refine(sides):
    """Each side's start is an upper bound (late by how long its lines took
    to arrive), its floor a lower bound. What one side did before something
    the other saw came first; if the estimates say otherwise, the side that
    acted is moved earlier (never before its floor):
    - a FIN arrives after it leaves: what the sender traced before its FIN
      (the line before its shutdown, which is stamped once shutdown(2) has
      returned, or its last line, when the FIN leaves with the close at its
      exit) came before the peer read the end of file;
    - B created its socket before A's accept() returned;
    - a line shown by one side was sent by the other side's child, which
      had started.
    What is left is settled row by row (see `end_arrows`), and marked."""
    a, b = sides
    for _ in range(3):
        pairs = []  # (side to move, its line, the time it must not pass)
        for here, there in (sides, sides[::-1]):
            end = next((l for l in here.lines if l.kind == "trace" and l.event == "eof" and l.details == "socket"),
                       None)
            traced = [l for l in there.lines if l.kind == "trace"]
            if end is not None and traced:
                shutdown = next((l for l in traced if l.event == "shutdown"), None)
                if shutdown is not None:  # the line its process traced before it
                    mine = [l for l in traced if l.pid == shutdown.pid]
                    index = mine.index(shutdown)
                    if index:
                        pairs.append((there, mine[index - 1], end.time))
                else:
                    pairs.append((there, traced[-1], end.time))
            start = next((l for l in there.lines if l.kind == "trace" and l.event == "start"), None)
            shown = next((l for l in here.lines if l.kind == "shown"), None)
            if start is not None and shown is not None:
                pairs.append((there, start, shown.time))
        socket_b = next((l for l in b.lines if l.kind == "trace"), None)
        accept = next((l for l in a.lines if l.kind == "trace" and l.event == "accept"), None)
        if socket_b is not None and accept is not None:
            pairs.append((b, socket_b, accept.time))
        for side, line, limit in pairs:
            # (a move that its floor forbids is not made at all: the two
            # clocks disagree there, and `end_arrows` settles it row by row)
            if line.time > limit and side.start - (line.time - limit) - 1e-6 >= side.floor:
                side.start -= (line.time - limit) + 1e-6
                place(side)


# ---------------------------------------------------------------------------
# What is drawn: rows (one per event, or a few events of one process in a
# row), horizontal arrows within a row, arrows between rows.

SAY = {
    # key: (French, English); {…} from the row's args
    "listen": ("socket, bind, listen : port {port}", "socket, bind, listen: port {port}"),
    "handshake": ("poignée de main TCP (noyaux)", "TCP handshake (the kernels)"),
    "connect": ("connect() : connecté", "connect() returns: connected"),
    "accept": ("accept() : connexion déjà établie", "accept(): connection already set up"),
    "fork": ("fork()", "fork()"),
    "types": ("tape « {shown} »{enter}", "types '{shown}'{enter}"),
    "pipe-gives": ("le tube donne « {shown} »", "the pipe gives '{shown}'"),
    "data": ("« {text} »", "'{text}'"),
    "shown": ("écrit « {text} » sur stdout", "writes '{text}' to stdout"),
    "draw-shown": ("dessine « {text} »", "draws '{text}'"),
    "on-screen": ("« {text} » à l'écran", "'{text}' on the screen"),
    "unread": ("« {text} » reste non lu dans sa socket", "'{text}' stays unread in its socket"),
    "ctrl-d": ("Ctrl-D", "Ctrl-D"),
    "pipe-ends": ("fin du tube", "the pipe ends"),
    "ctrl-c": ("Ctrl-C : SIGINT au groupe", "Ctrl-C: SIGINT to the group"),
    "kill-action": ("kill -{sig} (autre terminal)", "kill -{sig} (another terminal)"),
    "stop-action": ("kill -STOP : père arrêté", "kill -STOP: parent stopped"),
    "pdeath": ("le fils meurt aussi : SIGKILL (PR_SET_PDEATHSIG)", "the child dies too: SIGKILL (PR_SET_PDEATHSIG)"),
    "eof-stdin": ("read(0) = 0 : fin de l'entrée", "read(0) = 0: end of input"),
    "quit": ("mot de fin « exit »", "quit word 'exit'"),
    "shutdown": ("shutdown(SHUT_WR)", "shutdown(SHUT_WR)"),
    "eof-socket": ("read = 0 : FIN reçu", "read = 0: FIN received"),
    "reset": ("read : ECONNRESET (RST reçu)", "read: ECONNRESET (RST received)"),
    "signal": ("reçoit {sig}", "gets {sig}"),
    "kill": ("kill(fils, {sig})", "kill(child, {sig})"),
    "kill-late": ("kill(fils, {sig}) : sans effet", "kill(child, {sig}): no effect"),
    "waitpid-exited": ("waitpid : fils terminé ({code})", "waitpid: child exited {code}"),
    "waitpid-signaled": ("waitpid : fils tué ({sig})", "waitpid: child killed ({sig})"),
    "exit": ("exit({code})", "exit({code})"),
    "exit-signal": ("meurt de {sig}", "dies of {sig}"),
    "draw-layout": ("dessine le cadre", "draws the layout"),
    "draw-input": ("dessine la saisie", "draws the input line"),
    "draw-conversation": ("dessine la conversation", "draws the conversation"),
    "draw-status": ("dessine l'état", "draws the status"),
    "draw-leave": ("rend le terminal", "gives the terminal back"),
    "FIN": ("FIN", "FIN"),
    "FIN-close": ("FIN (close)", "FIN (close)"),
    "RST": ("RST", "RST"),
    "SIGCHLD": ("SIGCHLD", "SIGCHLD"),
    "SIGINT": ("SIGINT", "SIGINT"),
    "enter": (" + Entrée", ", Enter"),
    "times": (" (×{n})", " (×{n})"),
}
LANGS = {"fr": 0, "en": 1}
SEP = {"fr": " ; ", "en": "; "}


def say(lang, key, args) -> str:
    args = dict(args)
    if "text" in args:
        args["shown"] = args["text"].strip()
    if "enter" in args:
        args["enter"] = SAY["enter"][LANGS[lang]] if args["enter"] else ""
    text = SAY[key][LANGS[lang]].format(**args)
    if args.get("n", 1) > 1:
        text += SAY["times"][LANGS[lang]].format(n=args["n"])
    return text


class Row:
    def __init__(self, time, col, key, args=None, lines=(), approx=False):
        self.time, self.col, self.approx = time, col, approx
        self.parts = [(key, dict(args or {}))]
        self.lines = list(lines)
        self.hops: list[tuple[tuple, str]] = []  # (target column, kind): arrows within the row
        self.deaths: list[tuple] = []  # columns whose lifeline ends here (✕)

    def text(self, lang) -> str:
        return SEP[lang].join(say(lang, k, a) for k, a in self.parts)


class Arrow:
    def __init__(self, kind, src, src_col, dst, dst_col, key, args=None):
        self.kind, self.src, self.src_col, self.dst, self.dst_col = kind, src, src_col, dst, dst_col
        self.key, self.args = key, args or {}


def build(sides):
    """The rows and arrows of a run, from its lines (any language)."""
    rows: list[Row] = []
    arrows: list[Arrow] = []
    attach = []  # (line, "next" or "previous"): a line that joins a row of its side
    for side in sides:
        s = side.letter
        children = [int(l.details.split("=")[1]) for l in side.lines if l.kind == "trace" and l.event == "fork"]
        side.child_pid = children[0] if children else None

        def col(pid, s=s, side=side):
            return (s, "pere") if pid == side.pid else (s, "fils")

        status = {}
        for l in side.lines:
            if l.kind == "trace" and l.event == "waitpid":
                pid, how = l.details.split(" ", 1)
                status[int(pid)] = how
        dead = set()
        port = None
        for l in sorted(side.lines, key=lambda l: l.time):
            if l.kind == "notice":
                if "reset by peer" in l.text:
                    rows.append(Row(l.time, col(side.pid), "reset", {}, [l]))
                else:
                    attach.append((l, "previous"))
                continue
            if l.kind == "action":
                target = col(l.target) if l.target is not None else (s, "fils")
                if l.key == "types":
                    key = "types" if side.master is not None else "pipe-gives"
                    row = Row(l.time, (s, "term"), key, l.args, [l])
                    row.hops.append((target, "action"))
                    row.typed = l.args
                elif l.key in ("ctrl-d", "pipe-ends"):
                    row = Row(l.time, (s, "term"), l.key, {}, [l])
                    row.hops.append((target, "action"))
                elif l.key == "ctrl-c":
                    row = Row(l.time, (s, "term"), "ctrl-c", {}, [l])
                    row.hops += [((s, "fils"), "sigint"), ((s, "pere"), "sigint")]
                    for pid in (side.child_pid, side.pid):  # who died of it (waitpid says)
                        if status.get(pid) == "signaled SIGINT" and pid not in dead:
                            row.deaths.append(col(pid))
                            dead.add(pid)
                elif l.key == "kill":
                    sig = l.args["sig"]
                    row = Row(l.time, (s, "term"), "stop-action" if sig == "SIGSTOP" else "kill-action",
                              {"sig": sig[3:]}, [l])
                    row.hops.append((target, "kill"))
                    if sig == "SIGKILL":
                        row.deaths.append(target)
                        dead.add(l.target)
                else:
                    raise ValueError(l.text)
                rows.append(row)
                continue
            if l.kind == "seen":
                row = Row(l.time, col(l.pid), "pdeath", {}, [l], approx=True)
                row.deaths.append(col(l.pid))
                dead.add(l.pid)
                rows.append(row)
                continue
            if l.kind == "shown":
                row = Row(l.time, (s, "pere"), "shown", {"text": l.text}, [l])
                row.hops.append(((s, "term"), "data"))
                row.shown = l.text
                rows.append(row)
                continue
            # A trace line.
            c, e, d = col(l.pid), l.event, l.details
            row = None
            if e in ("socket", "bind"):
                if e == "bind":
                    port = d.split()[-1]
                attach.append((l, "next"))
            elif e == "listen":
                row = Row(l.time, c, "listen", {"port": port}, [l])
            elif e == "connect":
                row = Row(l.time, c, "connect", {}, [l])
            elif e == "accept":
                row = Row(l.time, c, "accept", {}, [l])
            elif e == "fork":
                row = Row(l.time, c, "fork", {}, [l])
                row.hops.append(((s, "fils"), "fork"))
            elif e == "start":
                attach.append((l, "previous"))
            elif e == "eof":
                row = Row(l.time, c, "eof-stdin" if d == "stdin" else "eof-socket", {}, [l])
            elif e == "quit":
                row = Row(l.time, c, "quit", {}, [l])
            elif e == "shutdown":
                row = Row(l.time, c, "shutdown", {}, [l])
            elif e == "signal":
                row = Row(l.time, c, "signal", {"sig": d}, [l])
            elif e == "kill":
                pid, sig = d.split()
                late = int(pid) in dead or (status.get(int(pid), sig).startswith("signaled")
                                            and status.get(int(pid)) != f"signaled {sig}")
                row = Row(l.time, c, "kill-late" if late else "kill", {"sig": sig}, [l])
                row.hops.append(((s, "fils"), "kill"))
                if status.get(int(pid)) == f"signaled {sig}" and int(pid) not in dead:
                    row.deaths.append((s, "fils"))
                    dead.add(int(pid))
            elif e == "waitpid":
                how = d.split(" ", 1)[1]
                if how.startswith("exited"):
                    row = Row(l.time, c, "waitpid-exited", {"code": how.split()[1]}, [l])
                else:
                    row = Row(l.time, c, "waitpid-signaled", {"sig": how.split()[1]}, [l])
            elif e == "exit":
                if d.startswith("signal"):
                    row = Row(l.time, c, "exit-signal", {"sig": d.split()[1]}, [l])
                else:
                    row = Row(l.time, c, "exit", {"code": d}, [l])
                if l.pid not in dead:
                    row.deaths.append(c)
                    dead.add(l.pid)
            elif e == "draw":
                part = d.split()[0]
                row = Row(l.time, c, f"draw-{part}", {}, [l])
                row.hops.append(((s, "term"), "draw"))
            else:
                attach.append((l, "previous"))
            if row is not None:
                rows.append(row)
    rows.sort(key=lambda r: r.time)
    for l, where in attach:
        mine = [r for r in rows if r.lines[0].side == l.side]
        if where == "next":
            target = next((r for r in mine if r.time >= l.time), mine[-1])
        else:
            target = next((r for r in reversed(mine) if r.time <= l.time), mine[0])
        target.lines.append(l)
    # The handshake: the kernels complete it during connect(), before
    # connect() returns and before accept() is called.
    connect = next((r for r in rows if r.parts[0][0] == "connect"), None)
    accept = next((r for r in rows if r.parts[0][0] == "accept"), None)
    if connect and accept:
        hand = Row(min(connect.time, accept.time) - 2e-6, connect.col, "handshake", {}, [], approx=True)
        hand.hops.append(((accept.col[0], "pere"), "handshake"))
        rows.append(hand)
    data_arrows(sides, rows, arrows)
    # With the chat screen, the picture is about A's two writers, the child
    # drawing the input line and the parent the conversation: B's screen
    # updates (but the one showing A's line), and the layout, status and
    # leave updates, join the rows of their side (in each row's title).
    for r in [r for r in rows if r.parts[0][0].startswith("draw-") and (
            (r.col[0] == "B" and r.parts[0][0] != "draw-shown")
            or r.parts[0][0] in ("draw-layout", "draw-status", "draw-leave"))]:
        rows.remove(r)
        mine = [o for o in rows if o.col[0] == r.col[0] and o.parts[0][0] != "handshake"]
        host = next((o for o in reversed(mine) if o.time <= r.time), mine[0])
        host.lines += r.lines
    end_arrows(sides, rows, arrows)
    rows.sort(key=lambda r: r.time)
    return rows, arrows


def data_arrows(sides, rows, arrows):
    """A line typed (with Enter) at one side goes from that side's child
    through the socket to the other side's parent, which writes it to its
    stdout (or draws it, with the chat screen): the first time the other
    side showed it. Unshown (the receiver stopped, then killed): it stays in
    the receiver's socket."""
    pending = {}  # what a side typed without Enter yet
    for row in sorted(rows, key=lambda r: r.time):
        typed = getattr(row, "typed", None)
        if typed is None:
            continue
        s = row.col[0]
        other = "B" if s == "A" else "A"
        if not typed["enter"]:
            pending[s] = pending.get(s, "") + typed["text"]
            continue
        text = pending.pop(s, "") + typed["text"]
        quit_word = next((r for r in rows if r.col == (s, "fils") and r.parts[0][0] == "quit"
                          and r.time >= row.time), None)
        if quit_word is not None and text == "exit":  # read by the child, never sent
            continue
        shown = next((r for r in rows if getattr(r, "shown", None) and r.col[0] == other
                      and r.time >= row.time and r.shown.endswith(text)), None)
        if shown is not None:
            screen = any(r.col == (other, "pere") and r.parts[0][0].startswith("draw-") for r in rows)
            # The chat screen: the draw that showed it (stamped after its
            # write): the last before the screen showed it, after the typing.
            draws = [r for r in rows if r.col == (other, "pere") and r.parts[0][0] == "draw-conversation"
                     and r.time > row.time]
            before = [r for r in draws if r.time <= shown.time]
            draws = before[-1:] or draws[:1]
            if screen and not draws:  # (the clocks disagree: what the screen showed, when)
                shown.parts = [("on-screen", {"text": text})]
            elif draws:
                draw = draws[0]
                if shown.time < draw.time:
                    draw.time, draw.approx = shown.time - 1e-6, True
                draw.parts = [("draw-shown", {"text": text})]
                draw.lines += shown.lines
                rows.remove(shown)
                shown = draw
            else:
                shown.parts = [("shown", {"text": shown.shown})]
            end = shown
        else:
            end = Row(row.time + 1e-4, (other, "pere"), "unread", {"text": text}, [], approx=True)
            rows.append(end)
        arrows.append(Arrow("data", row, (s, "fils"), end, (other, "pere"), "data", {"text": text}))


def end_arrows(sides, rows, arrows):
    """FIN or RST between the sides, and SIGCHLD from a child's end to its
    parent. An arrow cannot point back in time: an end whose time is only
    known from above (a shutdown, stamped when it returned; a death seen by
    the generator) is drawn just before what it caused, and marked."""
    for here, there in (sides, sides[::-1]):
        end = next((r for r in rows if r.col == (here.letter, "pere")
                    and r.parts[0][0] in ("eof-socket", "reset")), None)
        if end is None:
            continue
        theirs = [r for r in rows if r.col[0] == there.letter and r.parts[0][0] not in ("handshake",)]
        shutdown = next((r for r in theirs if r.parts[0][0] == "shutdown"), None)
        if end.parts[0][0] == "reset":
            src = max((r for r in theirs if r.deaths), key=lambda r: r.time)
            kind, key, src_col = "rst", "RST", src.deaths[-1]
        elif shutdown is not None:
            src, kind, key, src_col = shutdown, "fin", "FIN", shutdown.col
        else:  # the close at the end of its last process
            src = max((r for r in theirs if r.deaths and r.time <= end.time + 1), key=lambda r: r.time)
            kind, key, src_col = "fin", "FIN-close", src.deaths[-1]
        if src.time >= end.time:
            settle(rows, src, end)
        arrows.append(Arrow(kind, src, src_col, end, end.col, key))
    for side in sides:
        s = side.letter
        death = next((r for r in rows if (s, "fils") in r.deaths), None)
        sigchld = next((r for r in rows if r.col == (s, "pere") and r.parts[0] == ("signal", {"sig": "SIGCHLD"})),
                       None)
        if death is not None and sigchld is not None:
            if death.time >= sigchld.time:
                settle(rows, death, sigchld)
            arrows.append(Arrow("signal", death, (s, "fils"), sigchld, (s, "pere"), "SIGCHLD"))


def settle(rows, src, dst):
    """`src` caused `dst`, but the clocks put it later: `src` is drawn just
    before `dst` if its process did nothing in between; else `dst` just
    after `src` (and what its process did next, after it). Both marked."""
    mine = [r for r in rows if r.col == src.col and r.time < src.time and r is not src]
    if not mine or max(r.time for r in mine) < dst.time - 2e-6:
        src.time, src.approx = dst.time - 1e-6, True
        return
    old, new = dst.time, src.time + 1e-6
    dst.time, dst.approx = new, True
    following = sorted((r for r in rows if r.col == dst.col and r is not dst and old <= r.time <= new),
                       key=lambda r: r.time)
    for i, r in enumerate(following):
        r.time, r.approx = new + (i + 1) * 1e-6, True


MAX_ROWS = 20


def merge_rows(rows, arrows, limit=MAX_ROWS):
    """At most `limit` rows: two rows next to each other, of one process,
    become one (the shortest pair first), its label both labels; a row with
    arrows to draw within it takes one without."""
    def label_length(r):
        return len(r.text("fr"))

    while len(rows) > limit:
        pairs = [(label_length(a) + label_length(b), i) for i, (a, b) in enumerate(zip(rows, rows[1:]))
                 if a.col == b.col and (not (a.hops and b.hops) or a.hops == b.hops) and not (a.deaths and b.deaths)
                 and a.parts[0][0] != "handshake" and b.parts[0][0] != "handshake"
                 and (label_length(a) + label_length(b) <= 56 or a.parts == b.parts)]
        if not pairs:
            break
        _, i = min(pairs)
        a, b = rows[i], rows[i + 1]
        # two draws of one kind: "(×2)"
        if len(a.parts) == 1 and len(b.parts) == 1 and a.parts[0][0] == b.parts[0][0] \
                and a.parts[0][0].startswith("draw-") and a.parts[0][0] != "draw-shown":
            a.parts[0][1]["n"] = a.parts[0][1].get("n", 1) + b.parts[0][1].get("n", 1)
        else:
            a.parts += b.parts
        a.lines += b.lines
        a.hops += [h for h in b.hops if h not in a.hops]
        a.deaths += b.deaths
        a.approx = a.approx or b.approx
        for arrow in arrows:
            if arrow.src is b:
                arrow.src = a
            if arrow.dst is b:
                arrow.dst = a
        del rows[i + 1]
    return rows


# ---------------------------------------------------------------------------
# Drawing, 1280 px wide, text 16 px (DejaVu Sans Mono: each character
# 0.602 em wide, so that a label's box is known exactly: the test computes
# the same boxes and checks that none crosses a lifeline).

WIDTH = 1280
SIZE = 16
CHAR = 0.602 * SIZE
LEAD = 19  # between the two lines of a label
ROW = 44
AXIS = 84  # the times, on the left
X = {("A", "term"): 120, ("A", "fils"): 340, ("A", "pere"): 545,
     ("B", "pere"): 790, ("B", "fils"): 995, ("B", "term"): 1200}
FONT = f"font-family='DejaVu Sans Mono,monospace' font-size='{SIZE}'"
COLOURS = {"fin": "#1f6feb", "rst": "#cf222e", "handshake": "#2da44e", "signal": "#8250df", "sigint": "#8250df",
           "fork": "#24292f", "kill": "#cf222e", "action": "#9a6700", "draw": "#0a7f86", "data": "#bf3989"}
HEADERS = {
    "term": ("{s} : terminal", "{s}: terminal"),
    "pipe": ("{s} : tube (entrée)", "{s}: pipe (input)"),
    "pere": ("{s} : père", "{s}: parent"),
    "fils": ("{s} : fils", "{s}: child"),
}
WORDS = {
    "axis": ("ms, depuis le 1er événement de A", "ms, from A's first event"),
    "approx": ("* instant déduit, non lu dans la trace : la poignée de main ; un shutdown ou un draw, datés "
               "à leur retour ; une mort vue après coup. Placé juste avant ce qu'il a causé (ou juste après "
               "sa cause).",
               "* a time deduced, not read in the trace: the handshake; a shutdown or a draw, stamped when "
               "they return; a death seen after it. Drawn just before what it caused (or just after its "
               "cause)."),
    "gap": ("… {s} s", "… {s} s"),
    "pid": ("pid {pid}", "pid {pid}"),
}


def word(lang, key, **args):
    return WORDS[key][LANGS[lang]].format(**args)


def number(lang, value, digits=1):
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "fr" else text


def wrap(text, width_px):
    """One line if it fits, else two, split at the space nearest the middle
    that is not inside a quotation (« … » or '…')."""
    if len(text) * CHAR <= width_px:
        return [text]
    spaces, inside = [], False
    for i, c in enumerate(text):
        if c in "«»":
            inside = c == "«"
        elif c == "'" and (i == 0 or text[i - 1] == " "):  # an opening quote, not an apostrophe
            inside = True
        elif c == "'" and inside and (i + 1 == len(text) or not text[i + 1].isalpha()):
            inside = False
        elif c == " " and not inside:
            spaces.append(i)
    best = None
    for i in spaces:
        first, second = text[:i], text[i + 1:]
        w = max(len(first), len(second)) * CHAR
        if best is None or w < best[0]:
            best = (w, [first, second])
    return best[1] if best else [text]


def text_box(x, baseline, lines, anchor):
    w = max(len(l) for l in lines) * CHAR
    x0 = {"start": x, "end": x - w, "middle": x - w / 2}[anchor]
    return (x0, baseline - 0.8 * SIZE, x0 + w, baseline + LEAD * (len(lines) - 1) + 0.25 * SIZE)


def overlaps(a, b, margin=3):
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin and b[1] < a[3] + margin


class Canvas:
    def __init__(self):
        self.boxes = []  # text boxes placed
        self.lifelines = []  # (x, y0, y1)
        self.segments = []  # arrows: (x1, y1, x2, y2)

    def free(self, box):
        if box[0] < AXIS or box[2] > WIDTH - 4:
            return False
        if any(x > box[0] - 4 and x < box[2] + 4 and y0 < box[3] and y1 > box[1] for x, y0, y1 in self.lifelines):
            return False
        if any(crosses(segment, box) for segment in self.segments):
            return False
        return not any(overlaps(box, b) for b in self.boxes)


def crosses(segment, box, margin=2):
    """Whether the segment passes through the box (sampled every 2 px)."""
    x1, y1, x2, y2 = segment
    steps = max(1, int(max(abs(x2 - x1), abs(y2 - y1)) / 2))
    for i in range(steps + 1):
        x, y = x1 + (x2 - x1) * i / steps, y1 + (y2 - y1) * i / steps
        if box[0] - margin <= x <= box[2] + margin and box[1] - margin <= y <= box[3] + margin:
            return True
    return False


def svg_text(x, baseline, lines, anchor, colour="#24292f", extra="", cls="label"):
    spans = "".join(
        f"<tspan x='{x:.0f}' dy='{0 if i == 0 else LEAD}'>{html.escape(t)}</tspan>" for i, t in enumerate(lines))
    return (f"<text class='{cls}' x='{x:.0f}' y='{baseline:.0f}' text-anchor='{anchor}' fill='{colour}'{extra}>"
            f"{spans}</text>")


def arrow_line(x1, y1, x2, y2, kind, dashed=False, cls="") -> str:
    if x1 == x2 and y1 == y2:
        return ""
    length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
    ex, ey = x2 - 7 * (x2 - x1) / length, y2 - 7 * (y2 - y1) / length
    dash = " stroke-dasharray='6 4'" if dashed else ""
    return (f"<line class='{cls}' x1='{x1:.1f}' y1='{y1:.1f}' x2='{ex:.1f}' y2='{ey:.1f}' stroke='{COLOURS[kind]}' "
            f"stroke-width='2.5' marker-end='url(#head-{kind})'{dash}/>")


def draw(name, titles, sides, rows, arrows, lang) -> str:
    title = titles[1] if lang == "fr" else titles[0]
    title_lines = wrap(title, (WIDTH - 24) * SIZE / 20)  # (the title is 20 px)
    top = 40 + 26 * len(title_lines) + 2 * 22 + 60
    ys, y, gaps = {}, top + 30, []
    levels = share_levels(rows, arrows)
    for i, level in enumerate(levels):
        if i and level[0].time - levels[i - 1][-1].time > 0.1:
            gaps.append((y - ROW / 2 + 6, level[0].time - levels[i - 1][-1].time))
            y += 14
        for r in level:
            ys[id(r)] = y
        y += ROW
    bottom = y - ROW / 2 + 10
    height = bottom + 40 + (48 if any(r.approx for r in rows) else 0)
    c = Canvas()
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height:.0f}' "
        f"viewBox='0 0 {WIDTH} {height:.0f}' {FONT}>",
        f"<title>{html.escape(title)}</title>",
        "<defs>" + "".join(
            f"<marker id='head-{k}' viewBox='0 0 10 10' refX='2' refY='5' markerWidth='4' markerHeight='4' "
            f"orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='{v}'/></marker>"
            for k, v in COLOURS.items()) + "</defs>",
        "<style>text{paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}</style>",
        f"<rect width='{WIDTH}' height='{height:.0f}' fill='#fff'/>",
    ]
    for i, t in enumerate(title_lines):
        out.append(f"<text class='title' x='12' y='{32 + 26 * i}' font-size='20' font-weight='bold'>"
                   f"{html.escape(t)}</text>")
    cy = 32 + 26 * len(title_lines)
    for side in sides:
        out.append(f"<text class='command' x='12' y='{cy}' fill='#57606a'>{side.letter} : "
                   f"{html.escape(command(side))}</text>" if lang == "fr" else
                   f"<text class='command' x='12' y='{cy}' fill='#57606a'>{side.letter}: "
                   f"{html.escape(command(side))}</text>")
        cy += 22
    # Lifelines: a terminal all along; a process from the top (or its fork)
    # to its end (✕).
    head_y = top - 44
    for (s, who), cx in X.items():
        side = sides[0] if s == "A" else sides[1]
        pid = side.pid if who == "pere" else side.child_pid
        start = head_y + 44
        if who == "fils":
            fork = next((r for r in rows if r.col == (s, "pere") and ((s, "fils"), "fork") in r.hops), None)
            start = ys[id(fork)] if fork else start
        death = next((r for r in rows if (s, who) in r.deaths), None) if who != "term" else None
        end = ys[id(death)] if death else bottom
        dash = " stroke-dasharray='6 5'" if who == "term" else ""
        out.append(f"<line class='lifeline' data-column='{s}-{who}' x1='{cx}' y1='{start:.0f}' x2='{cx}' "
                   f"y2='{end:.0f}' stroke='#8c959f' stroke-width='2'{dash}/>")
        c.lifelines.append((cx, start, end))
        if death:
            out.append(f"<path class='death' data-column='{s}-{who}' d='M{cx - 8},{end - 8} L{cx + 8},{end + 8} "
                       f"M{cx - 8},{end + 8} L{cx + 8},{end - 8}' stroke='#24292f' stroke-width='3'/>")
        kind = "pipe" if who == "term" and side.master is None else who
        header = HEADERS[kind][LANGS[lang]].format(s=s)
        sub = word(lang, "pid", pid=pid) if who != "term" else ""
        half = 88 if sub else 70
        out.append(f"<rect x='{cx - half}' y='{head_y}' width='{2 * half}' height='{44 if sub else 30}' rx='5' "
                   f"fill='{'#f6f8fa' if who == 'term' else '#ddf4ff'}' stroke='#8c959f'/>")
        out.append(f"<text class='header' x='{cx}' y='{head_y + 21}' text-anchor='middle' font-weight='bold'>"
                   f"{html.escape(header)}</text>")
        if sub:
            out.append(f"<text class='header' x='{cx}' y='{head_y + 39}' text-anchor='middle' fill='#57606a'>"
                       f"{sub}</text>")
    out.append(f"<text class='axis' x='8' y='{head_y + 21}' fill='#57606a'>ms</text>")
    t0 = min(r.time for r in rows)
    for gy, gap in gaps:
        out.append(f"<line x1='{AXIS}' y1='{gy:.0f}' x2='{WIDTH - 10}' y2='{gy:.0f}' stroke='#d0d7de' "
                   "stroke-dasharray='2 5'/>")
        out.append(f"<text class='axis' x='{AXIS - 6}' y='{gy + 6:.0f}' text-anchor='end' fill='#57606a'>"
                   f"{word(lang, 'gap', s=number(lang, gap))}</text>")
    # Rows: the mark, the arrows within the row, the label (which keeps
    # clear of the lifelines, of the other labels and of every arrow).
    for a in arrows:
        c.segments.append((X[a.src_col], ys[id(a.src)], X[a.dst_col], ys[id(a.dst)]))
    for r in rows:
        for target, _ in r.hops:
            c.segments.append((X[r.col], ys[id(r)], X[target], ys[id(r)]))
    timed = set()
    for r in rows:
        y = ys[id(r)]
        cx = X[r.col]
        star = "*" if r.approx else ""
        if y not in timed:  # (two rows at one height: the first one's time)
            timed.add(y)
            out.append(f"<text class='axis' x='{AXIS - 6}' y='{y + 6:.0f}' text-anchor='end' fill='#57606a'>"
                       f"{number(lang, (r.time - t0) * 1000)}{star}</text>")
        side = sides[0] if r.col[0] == "A" else sides[1]
        pid = {"pere": side.pid, "fils": side.child_pid}.get(r.col[1], "")
        parts = [f"<g class='row' data-column='{r.col[0]}-{r.col[1]}' data-pid='{pid}' data-y='{y:.0f}' "
                 f"data-keys='{' '.join(k for k, _ in r.parts)}'>",
                 f"<title>{html.escape(chr(10).join(l.text for l in r.lines))}</title>"]
        for target, kind in r.hops:
            tx = X[target]
            parts.append(arrow_line(cx, y, tx, y, kind, cls=f"hop {kind}"))
        if r.col[1] != "term" and r.parts[0][0] != "handshake":
            parts.append(f"<rect x='{cx - 5}' y='{y - 5}' width='10' height='10' fill='#24292f'/>")
        colour = "#9a6700" if r.col[1] == "term" else "#24292f"
        placed = place_row_label(c, r, y, r.text(lang))
        if placed is None:  # each event of the row on its own
            placed = [place_row_label(c, r, y, say(lang, k, a), last=True) for k, a in r.parts]
        else:
            placed = [placed]
        for p in placed:
            parts.append(svg_text(*p, colour))
        parts.append("</g>")
        out += parts
    for a in arrows:
        out.append(render_arrow(c, a, ys, lang))
    if any(r.approx for r in rows):
        note = word(lang, "approx")
        for i, t in enumerate(wrap(note, WIDTH - 24)):
            out.append(f"<text class='note' x='12' y='{bottom + 30 + LEAD * i:.0f}' fill='#57606a'>"
                       f"{html.escape(t)}</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def share_levels(rows, arrows, limit=MAX_ROWS):
    """The rows' heights: one row each, but while there are more than
    `limit`, two neighbouring rows of different sides, with no arrow
    between them and nothing drawn across the other side, share a height
    (the closest in time first)."""
    levels = [[r] for r in rows]
    linked = {(id(a.src), id(a.dst)) for a in arrows} | {(id(a.dst), id(a.src)) for a in arrows}
    while len(levels) > limit:
        pairs = []
        for i, (one, two) in enumerate(zip(levels, levels[1:])):
            if len(one) > 1 or len(two) > 1:
                continue
            a, b = one[0], two[0]
            if a.col[0] == b.col[0] or (id(a), id(b)) in linked or "handshake" in (a.parts[0][0], b.parts[0][0]):
                continue
            pairs.append((b.time - a.time, i))
        if not pairs:
            break
        _, i = min(pairs)
        levels[i] += levels.pop(i + 1)
    return levels


def place_row_label(c, r, y, label, last=False):
    """A row's label: over its arrow (in the widest stretch between two
    lifelines the arrow crosses) when it has one, else beside its mark,
    toward the middle first; on one line, or two."""
    cx = X[r.col]
    alive = sorted({x for x, y0, y1 in c.lifelines if y0 <= y + 30 and y1 >= y - 30})
    candidates = []
    if r.hops:
        xs = [cx] + [X[t] for t, _ in r.hops]
        lo, hi = min(xs), max(xs)
        stops = sorted({lo, hi} | {x for x in alive if lo < x < hi})
        spans = sorted(zip(stops, stops[1:]), key=lambda p: p[0] - p[1])
        for one_line in (True, False):
            for x0, x1 in spans:
                lines = [label] if one_line else wrap(label, x1 - x0 - 12)
                base = y - 8 - LEAD * (len(lines) - 1)
                candidates.append(((x0 + x1) / 2, base, lines, "middle"))
    toward = 1 if r.col[0] == "A" else -1
    if r.col[1] == "term":
        toward = -toward
    for one_line in (True, False):
        for direction in (toward, -toward):
            limit = next((x for x in (alive if direction > 0 else reversed(alive))
                          if (x - cx) * direction > 0), WIDTH if direction > 0 else AXIS)
            room = abs(limit - cx) - 24
            lines = [label] if one_line else wrap(label, room)
            base = y + 6 - (LEAD / 2) * (len(lines) - 1)
            if r.hops:  # beside, but under the arrow
                base = y + 22
            candidates.append((cx + 12 * direction, base, lines, "start" if direction > 0 else "end"))
    # Last, beside the mark but a little above or below it.
    candidates += [(x, base + dy, lines, anchor) for dy in (-16, 16, -24, 24)
                   for x, base, lines, anchor in candidates[-4:]]
    for x, base, lines, anchor in candidates:
        box = text_box(x, base, lines, anchor)
        if c.free(box):
            c.boxes.append(box)
            return x, base, lines, anchor
    if not last and len(r.parts) > 1:
        return None
    x, base, lines, anchor = candidates[0]
    c.boxes.append(text_box(x, base, lines, anchor))
    return x, base, lines, anchor


def render_arrow(c, a, ys, lang) -> str:
    x1, y1 = X[a.src_col], ys[id(a.src)]
    x2, y2 = X[a.dst_col], ys[id(a.dst)]
    label = say(lang, a.key, a.args)
    colour = COLOURS[a.kind]
    body = arrow_line(x1, y1, x2, y2, a.kind, dashed=a.kind in ("signal", "rst"), cls="between")
    # The label: in a stretch between two lifelines the arrow crosses, at
    # the arrow's height there, above it or below it.
    lo, hi = min(x1, x2), max(x1, x2)
    stops = sorted({lo, hi} | {x for x in X.values() if lo < x < hi})
    spans = sorted(zip(stops, stops[1:]), key=lambda p: p[0] - p[1])
    chosen = None
    own = (x1, y1, x2, y2)
    others = [seg for seg in c.segments if seg != own]
    saved, c.segments = c.segments, others
    for x0, x1s in spans:
        for f in (0.5, 0.35, 0.65):
            mx = x0 + (x1s - x0) * f
            my = y1 + (y2 - y1) * ((mx - x1) / (x2 - x1)) if x2 != x1 else (y1 + y2) / 2
            for dy in (-8, 20, -26, 38):
                box = text_box(mx, my + dy, [label], "middle")
                if c.free(box):
                    chosen = (mx, my + dy)
                    break
            if chosen:
                break
        if chosen:
            break
    c.segments = saved
    if chosen is None:
        mx = (spans[0][0] + spans[0][1]) / 2 if spans else (x1 + x2) / 2
        chosen = (mx, (y1 + y2) / 2 - 8)
    c.boxes.append(text_box(chosen[0], chosen[1], [label], "middle"))
    return (f"<g class='arrow {a.kind}' data-key='{a.key}' data-from='{a.src_col[0]}-{a.src_col[1]}' "
            f"data-to='{a.dst_col[0]}-{a.dst_col[1]}' data-y1='{y1:.0f}' data-y2='{y2:.0f}'>{body}"
            + svg_text(chosen[0], chosen[1], [label], "middle", colour, " font-weight='bold'") + "</g>")


def command(side):
    return " ".join(["forkchat", *side.argv[1:]]) + ("" if side.master is not None else " < pipe")


ACTIONS_FR = {"types": "tape « {text} »", "ctrl-d": "Ctrl-D", "pipe-ends": "fin du tube", "ctrl-c": "Ctrl-C",
              "kill": "kill -{sig} {who}"}
WHO_FR = {"A's parent": "au père de A", "B's child": "au fils de B"}


def merged_trace(name, titles, sides, lang) -> str:
    lines = sorted((l for s in sides for l in s.lines), key=lambda l: l.time)
    t0 = min(l.time for l in lines)
    fr = lang == "fr"
    out = [f"# {name} : {titles[1]}" if fr else f"# {name}: {titles[0]}"]
    out += [f"# {s.letter} : {command(s)}" if fr else f"# {s.letter}: {command(s)}" for s in sides]
    out.append("# ms depuis le premier événement de A, côté, puis la ligne telle qu'affichée ; "
               "[ce que fait la personne, ce qui est vu]" if fr else
               "# ms from A's first event, side, then the line as printed; [what the person did, what was seen]")
    for l in lines:
        if l.kind == "action":
            text = "[" + (ACTIONS_FR[l.key].format(text=l.args.get("text", ""), sig=l.args.get("sig", "")[3:],
                                                   who=WHO_FR.get(l.args.get("who"), ""))
                          if fr else l.text) + "]"
        elif l.kind == "seen":
            text = f"[vu : {l.pid} tué aussi, SIGKILL (PR_SET_PDEATHSIG)]" if fr else f"[seen: {l.pid} {l.text}]"
        elif l.kind == "shown":
            text = f"[à l'écran de {l.side} : « {l.text} »]" if fr else f"[on {l.side}'s screen: '{l.text}']"
        else:
            text = l.text
        ms = f"{(l.time - t0) * 1000:10.3f}"
        out.append(f"{ms.replace('.', ',') if fr else ms} {l.side}  {text}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# The processes and their descriptors after fork, read from /proc/PID/fd of
# a running chat: A listening and B connecting on loopback, each on its own
# terminal (standard error included, no --trace), both children forked.

FD_NAMES = {"fr": "processus-descripteurs", "en": "processes-descriptors"}
FD_TITLES = ("After fork: each side's two processes and their descriptors (from /proc/PID/fd)",
             "Après fork : les deux processus de chaque côté et leurs descripteurs (lus dans /proc/PID/fd)")


def descriptors_of(pid) -> dict[int, tuple[str, str]]:
    """fd -> (what readlink says, the access mode from fdinfo: r, w or rw)."""
    table = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
            with open(f"/proc/{pid}/fdinfo/{name}") as f:
                flags = int(next(l for l in f if l.startswith("flags:")).split()[1], 8)
        except (FileNotFoundError, StopIteration):
            continue
        table[int(name)] = (target, {0: "r", 1: "w", 2: "rw"}[flags & 3])
    return table


def tcp_sockets() -> dict[str, tuple[int, int, str]]:
    """socket inode -> (local port, remote port, state) from /proc/net/tcp{,6}."""
    states = {"01": "ESTABLISHED", "0A": "LISTEN", "06": "TIME_WAIT", "08": "CLOSE_WAIT"}
    table = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                field = line.split()
                local, remote, state, inode = field[1], field[2], field[3], field[9]
                table[inode] = (int(local.split(":")[1], 16), int(remote.split(":")[1], 16), states.get(state, state))
    return table


def children_of(pid) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


class Terminal:
    """A forkchat on its own pseudo-terminal, all three descriptors on it."""

    def __init__(self, argv):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 12, 80, 0, 0))
        self.tty = os.ttyname(slave)
        self.master, self.output, self.cond = master, bytearray(), threading.Condition()

        def controlling_terminal():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.popen = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                                      preexec_fn=controlling_terminal, env=dict(os.environ, NO_COLOR="1", TERM="xterm"))
        os.close(slave)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                data = b""
            with self.cond:
                self.output += data
                self.cond.notify_all()
            if not data:
                return

    def wait_for(self, text, timeout=10.0):
        deadline = now() + timeout
        with self.cond:
            while text.encode() not in self.output:
                if now() > deadline:
                    raise RuntimeError(f"expected {text!r}, got {bytes(self.output)!r}")
                self.cond.wait(0.05)


def snapshot(forkchat, port):
    """Runs the chat, reads the descriptors, ends the chat (Ctrl-D in B).
    Returns {side: {"pid", "tty", "before", "pere", "fils", "fils_pid"}}
    and the TCP table."""
    sides = {}
    a = Terminal([forkchat, "listen", str(port), "--plain"])
    try:
        a.wait_for("listening on")
        before = descriptors_of(a.popen.pid)  # the main process, before any connection
        b = Terminal([forkchat, "connect", "127.0.0.1", str(port), "--plain"])
        try:
            b.wait_for("connected to")
            a.wait_for("connection from")
            for letter, t in (("A", a), ("B", b)):
                deadline = now() + 5
                while not children_of(t.popen.pid) and now() < deadline:
                    time.sleep(0.01)
                sides[letter] = {"pid": t.popen.pid, "tty": t.tty, "fils_pid": children_of(t.popen.pid)[0]}
            # Until two readings 100 ms apart agree (each process has closed
            # what it closes once it runs its copy loop).
            previous = None
            for _ in range(50):
                reading = {k: (descriptors_of(v["pid"]), descriptors_of(v["fils_pid"])) for k, v in sides.items()}
                if reading == previous:
                    break
                previous = reading
                time.sleep(0.1)
            for k, (pere, fils) in reading.items():
                sides[k]["pere"], sides[k]["fils"] = pere, fils
            sides["A"]["before"] = before
            tcp = tcp_sockets()
            os.write(b.master, b"\x04")
            b.popen.wait(10)
        finally:
            if b.popen.poll() is None:
                os.killpg(b.popen.pid, signal.SIGKILL)
                b.popen.wait()
        a.popen.wait(10)
    finally:
        if a.popen.poll() is None:
            os.killpg(a.popen.pid, signal.SIGKILL)
            a.popen.wait()
        reap_orphans()
    return sides, tcp


FD_WORDS = {
    "closed": ("fermé par ce processus", "closed by this process"),
    "closed-null": ("fermé par ce processus (→ /dev/null)", "closed by this process (→ /dev/null)"),
    "terminal": ("terminal de {s} ({tty})", "{s}'s terminal ({tty})"),
    "socket": ("socket : connexion TCP", "socket: the TCP connection"),
    "listening": ("socket d'écoute", "listening socket"),
    "pipe": ("tube {ino}, bout {end}", "pipe {ino}, {end} end"),
    "r": ("lecture", "read"), "w": ("écriture", "write"), "rw": ("lecture-écriture", "read-write"),
    "other": ("{target}", "{target}"),
    "pere": ("{s} : père, pid {pid}", "{s}: parent, pid {pid}"),
    "fils": ("{s} : fils, pid {pid}", "{s}: child, pid {pid}"),
    "pere-does": ("reçoit : socket → stdout (1)", "receives: socket → stdout (1)"),
    "fils-does": ("envoie : stdin (0) → socket", "sends: stdin (0) → socket"),
    "tcp": ("connexion TCP", "TCP connection"),
    "port": ("{s}, port {port}", "{s}, port {port}"),
    "listen-closed": ("{s} : la socket d'écoute (fd {fd}, {ino}) est fermée après accept : aucun processus ne l'a",
                      "{s}: the listening socket (fd {fd}, {ino}) is closed after accept: no process holds it"),
    "extra": ("{s} : le père garde aussi {what}",
              "{s}: the parent also keeps {what}"),
    "extra-terminal": ("une copie du terminal (fd {fds}), pour lui rendre ses réglages",
                       "a copy of the terminal (fd {fds}), to give it back its settings"),
    "extra-pipe": ("un tube dont il a les deux bouts (fd {fds}) : un signal y écrit un octet, qui réveille "
                   "sa boucle",
                   "a pipe it holds both ends of (fd {fds}): a signal writes a byte to it, which wakes its loop"),
    "legend": ("0, 1, 2 et la socket, hérités du fork : chacun ferme ce qu'il n'utilise pas "
               "(0 ou 1 : /dev/null prend sa place, pour qu'aucun descripteur ouvert plus tard "
               "ne reçoive ce numéro)",
               "0, 1, 2 and the socket, inherited through fork: each closes what it does not use "
               "(0 or 1: /dev/null takes its place, so that no descriptor opened later gets "
               "that number)"),
}


def fd_word(lang, key, **args):
    return FD_WORDS[key][LANGS[lang]].format(**args)


def classify(target, mode, tty, tcp):
    """(kind, args) of one descriptor."""
    if target == tty:
        return "terminal", {}
    if target == "/dev/null":
        # a standard descriptor given up after fork: closed, and its number
        # taken by /dev/null so that no later descriptor gets it
        return "closed", {"devnull": True}
    if target.startswith("socket:["):
        ino = target[8:-1]
        state = tcp.get(ino, (0, 0, ""))[2]
        return ("listening" if state == "LISTEN" else "socket"), {"ino": ino}
    if target.startswith("pipe:["):
        return "pipe", {"ino": target[5:], "mode": mode}
    return "other", {"target": target}


def fd_rows(side, who, tcp):
    """The rows of one process's box: 0, 1, 2 and the socket (present or
    closed), then every other descriptor it holds."""
    table = side[who]
    other = side["fils" if who == "pere" else "pere"]
    both = set(table) | set(other)
    sockets = [fd for fd in both if classify(*(table.get(fd) or other[fd]), side["tty"], tcp)[0] == "socket"]
    rows = []
    for fd in sorted({0, 1, 2, *sockets} | set(table)):
        if fd in table:
            kind, args = classify(*table[fd], side["tty"], tcp)
            rows.append((fd, kind, args))
        elif fd in both or fd in (0, 1, 2):
            rows.append((fd, "closed", {}))
    return rows


def fd_label(lang, s, kind, args, tty):
    if kind == "pipe":
        return fd_word(lang, "pipe", ino=args["ino"], end=fd_word(lang, args["mode"]))
    if kind == "terminal":
        return fd_word(lang, "terminal", s=s, tty=tty)
    if kind == "closed" and args.get("devnull"):
        return fd_word(lang, "closed-null")
    return fd_word(lang, kind, **args)


def draw_descriptors(sides, tcp, lang) -> str:
    title = FD_TITLES[1] if lang == "fr" else FD_TITLES[0]
    title_lines = wrap(title, (WIDTH - 24) * SIZE / 20)
    line_h, box_w = 26, 500
    boxes = {("A", "pere"): (20, 0), ("A", "fils"): (20, 1), ("B", "pere"): (WIDTH - 20 - box_w, 0),
             ("B", "fils"): (WIDTH - 20 - box_w, 1)}
    all_rows = {key: fd_rows(sides[key[0]], key[1], tcp) for key in boxes}
    per_box = max(len(r) for r in all_rows.values())
    heights = [70 + line_h * max(len(all_rows[(s, w)]) for s in "AB") + 10 for w in ("pere", "fils")]
    box_h = sum(heights) / 2  # (the two rows of boxes, on average)
    top = 40 + 26 * len(title_lines) + 20
    height = round(top + 2 * box_h + 40 + 7 * 24 + 20)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
           f"viewBox='0 0 {WIDTH} {height}' {FONT}>",
           f"<title>{html.escape(title)}</title>",
           f"<rect width='{WIDTH}' height='{height}' fill='#fff'/>"]
    for i, t in enumerate(title_lines):
        out.append(f"<text class='title' x='12' y='{32 + 26 * i}' font-size='20' font-weight='bold'>"
                   f"{html.escape(t)}</text>")
    socket_points = {}
    for (s, who), (bx, row) in boxes.items():
        side = sides[s]
        by = top + row * (heights[0] + 40)
        pid = side["pid"] if who == "pere" else side["fils_pid"]
        out.append(f"<g class='process' data-side='{s}' data-role='{who}' data-pid='{pid}'>")
        out.append(f"<rect x='{bx}' y='{by}' width='{box_w}' height='{heights[row]}' rx='8' fill='#ddf4ff' "
                   "stroke='#57606a' stroke-width='2'/>")
        out.append(f"<text class='header' x='{bx + 14}' y='{by + 26}' font-weight='bold'>"
                   f"{html.escape(fd_word(lang, who, s=s, pid=pid))}</text>")
        out.append(f"<text class='header' x='{bx + 14}' y='{by + 50}' fill='#57606a'>"
                   f"{html.escape(fd_word(lang, who + '-does'))}</text>")
        for i, (fd, kind, args) in enumerate(all_rows[(s, who)]):
            y = by + 80 + line_h * i
            label = fd_label(lang, s, kind, args, side["tty"])
            colour = {"closed": "#8c959f", "socket": "#bf3989"}.get(kind, "#24292f")
            deco = " text-decoration='line-through'" if kind == "closed" else ""
            out.append(f"<g class='fd' data-fd='{fd}' data-kind='{kind}'>"
                       f"<text x='{bx + 24}' y='{y}' font-weight='bold' fill='{colour}'>{fd}</text>"
                       f"<text x='{bx + 60}' y='{y}' fill='{colour}'{deco if False else ''}>"
                       f"{'✕ ' if kind == 'closed' else '→ '}{html.escape(label)}</text></g>")
            if kind == "socket":
                socket_points[(s, who)] = (bx + box_w if s == "A" else bx, y - 5, args["ino"])
        out.append("</g>")
    # The connection in the middle, and each process's socket descriptor to it.
    cx0, cx1 = 20 + box_w + 20, WIDTH - 20 - box_w - 20
    cy0, cy1 = top + 40, top + heights[0] + 40 + heights[1] - 20
    ports = {}
    for (s, who), (_, _, ino) in socket_points.items():
        if ino in tcp:
            ports[s] = tcp[ino][0]
    out.append(f"<rect x='{cx0}' y='{cy0}' width='{cx1 - cx0}' height='{cy1 - cy0}' rx='8' fill='#fff0f6' "
               "stroke='#bf3989' stroke-width='2'/>")
    mid = (cx0 + cx1) / 2
    lines = [fd_word(lang, "tcp"), fd_word(lang, "port", s="A", port=ports.get("A", "?")), "↑↓",
             fd_word(lang, "port", s="B", port=ports.get("B", "?"))]
    for i, t in enumerate(lines):
        out.append(f"<text class='tcp' x='{mid:.0f}' y='{(cy0 + cy1) / 2 - 40 + 28 * i:.0f}' text-anchor='middle' "
                   f"font-weight='bold' fill='#bf3989'>{html.escape(t)}</text>")
    for (s, who), (x, y, ino) in socket_points.items():
        ex = cx0 if s == "A" else cx1
        out.append(f"<line class='socket-link' x1='{x}' y1='{y}' x2='{ex}' y2='{min(max(y, cy0 + 10), cy1 - 10)}' "
                   "stroke='#bf3989' stroke-width='3'/>")
    notes = [fd_word(lang, "legend")]
    before = sides["A"].get("before", {})
    for fd, (target, mode) in sorted(before.items()):
        kind, args = classify(target, mode, sides["A"]["tty"], tcp)
        if target.startswith("socket:[") and all(target not in (t for t, _ in sides["A"][w].values())
                                                 for w in ("pere", "fils")):
            notes.append(fd_word(lang, "listen-closed", s="A", fd=fd, ino=target[7:]))
    # What else the parent holds (what each is for: Terminal.swift, Signals.swift).
    for s in ("A", "B"):
        rows = [r for r in fd_rows(sides[s], "pere", tcp) if r[0] > 2]
        copies = [str(fd) for fd, kind, _ in rows if kind == "terminal"]
        pipes = [str(fd) for fd, kind, _ in rows if kind == "pipe"]
        what = []
        if copies:
            what.append(fd_word(lang, "extra-terminal", fds=", ".join(copies)))
        if len(pipes) == 2:
            what.append(fd_word(lang, "extra-pipe", fds=" et ".join(pipes) if lang == "fr" else " and ".join(pipes)))
        if what:
            notes.append(fd_word(lang, "extra", s=s, what=(" ; " if lang == "fr" else "; ").join(what)))
    line = 0
    for note in notes:
        for t in wrap(note, WIDTH - 24):
            out.append(f"<text class='note' x='12' y='{top + 2 * box_h + 40 + 36 + 24 * line:.0f}' fill='#57606a'>"
                       f"{html.escape(t)}</text>")
            line += 1
    out.append("</svg>")
    return "\n".join(out) + "\n"


def descriptors_text(sides, tcp, lang) -> str:
    fr = lang == "fr"
    out = [f"# {FD_NAMES[lang]} : {FD_TITLES[1]}" if fr else f"# {FD_NAMES[lang]}: {FD_TITLES[0]}"]
    for s in ("A", "B"):
        side = sides[s]
        for who in ("pere", "fils"):
            pid = side["pid"] if who == "pere" else side["fils_pid"]
            out.append(f"{fd_word(lang, who, s=s, pid=pid)}   (ls -l /proc/{pid}/fd)")
            for fd, (target, mode) in sorted(side[who].items()):
                out.append(f"  {fd} -> {target}   ({mode})")
    if fr:
        out.append("# sockets TCP (/proc/net/tcp, tcp6) : inode, port local, port distant, état")
    else:
        out.append("# TCP sockets (/proc/net/tcp, tcp6): inode, local port, remote port, state")
    mine = {t[8:-1] for side in sides.values() for w in ("pere", "fils") for t, _ in side[w].values()
            if t.startswith("socket:[")}
    for ino in sorted(mine):
        if ino in tcp:
            out.append(f"  {ino} {tcp[ino][0]} {tcp[ino][1]} {tcp[ino][2]}")
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


def draw_run(forkchat, port, name, titles, function, outs):
    """Runs one scenario and draws it in each language: (run, rows,
    arrows, {lang: svg})."""
    run = Run(forkchat, port or free_port())
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
    rows, arrows = build(run.sides)
    merge_rows(rows, arrows)
    return run, rows, arrows, {lang: draw(name, titles, run.sides, rows, arrows, lang) for lang in outs}


def arrows_go_down(svg) -> bool:
    """No arrow of the drawing ends above where it starts."""
    for g in re.findall(r"<g class='arrow[^>]*>", svg):
        y1, y2 = re.search(r"data-y1='([-\d.]+)'", g), re.search(r"data-y2='([-\d.]+)'", g)
        if y1 and y2 and float(y2[1]) < float(y1[1]):
            return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("forkchat")
    parser.add_argument("outdir", help="the English diagrams (docs/diagrams)")
    parser.add_argument("--fr", help="the French diagrams (docs/fr/diagrams)")
    parser.add_argument("--port", type=int, default=None, help="default: 8080 if free, else any free port")
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    options = parser.parse_args()
    become_subreaper()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    outs = {"en": options.outdir}
    if options.fr:
        outs["fr"] = options.fr
    for out in outs.values():
        os.makedirs(out, exist_ok=True)
    forkchat = os.path.abspath(options.forkchat)
    for name, titles, function in SCENARIOS:
        if options.only and name not in options.only:
            continue
        # A run whose two clocks cannot be reconciled (an arrow would point
        # up, back in time: seen on a machine loaded by other work) is not
        # drawn: the scenario is run again, at most three times in all.
        for attempt in range(3):
            run, rows, arrows, drawn = draw_run(forkchat, options.port, name, titles, function, outs)
            if all(arrows_go_down(svg) for svg in drawn.values()):
                break
            print(f"{name}: an arrow would point back in time; running it again")
        for lang, out in outs.items():
            with open(os.path.join(out, f"{name}.svg"), "w") as f:
                f.write(drawn[lang])
            with open(os.path.join(out, f"{name}.txt"), "w") as f:
                f.write(merged_trace(name, titles, run.sides, lang))
        print(f"{name}.svg: {sum(len(s.lines) for s in run.sides)} lines, {len(rows)} rows, {len(arrows)} arrows")
    if not options.only or "descriptors" in options.only:
        sides, tcp = snapshot(forkchat, options.port or free_port())
        for lang, out in outs.items():
            with open(os.path.join(out, f"{FD_NAMES[lang]}.svg"), "w") as f:
                f.write(draw_descriptors(sides, tcp, lang))
            with open(os.path.join(out, f"{FD_NAMES[lang]}.txt"), "w") as f:
                f.write(descriptors_text(sides, tcp, lang))
        print(f"{FD_NAMES['en']}.svg: {sum(len(sides[s][w]) for s in sides for w in ('pere', 'fils'))} descriptors")


if __name__ == "__main__":
    main()
