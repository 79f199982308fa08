"""Clients of `forkchat room` for the end-to-end tests, and what they look at.

- start_room / stop_room: the room on a free port, stopped by a signal.
- Client: a raw TCP client reading whole lines; join() lets several in.
- Readers: one background thread reading many clients, stamping lines.
- Traffic: many clients sending and reading at once in one thread, each
  reading as fast as it can, at a set rate, or never.
- The room's processes through /proc: pids_of, descriptors, zombies_under,
  vm_rss_kib.
- Deadline / wait_until: the one way these helpers wait.
"""

import os
import re
import selectors
import signal
import socket
import threading
import time

import harness
from harness import Forkchat, Peer, Proc, children_of, free_port

LINE_LIMIT = 4000  # RoomLimits.lineBytes
WELCOME = rb"\* welcome to the room, (guest-\d+)! (\d+ others?) here\. /help lists the commands\.\n"


# ---------------------------------------------------------------------------
# Waiting


class Deadline:
    """A point in time `seconds` from now."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at


def wait_until(predicate, timeout=5.0, what="condition", interval=0.02):
    """harness.wait_until that fails on timeout, saying what it waited for."""
    return harness.wait_until(predicate, timeout, interval, what=what)


# ---------------------------------------------------------------------------
# The room


def start_room(*args, bind="127.0.0.1", trace=False):
    """Starts `forkchat room` on a free port; returns (proc, port)."""
    port = free_port()
    argv = ["room", str(port), *args]
    if bind:
        argv += ["--bind", bind]
    if trace:
        argv.append("--trace")
    room = Forkchat(*argv, stdin="devnull")
    where = re.escape(bind) if bind else r"::"
    room.wait_err(rf"forkchat: room open on {where} port {port}")
    return room, port


def stop_room(room, sig=signal.SIGTERM, traced=False):
    """Stops the room with `sig`: it must die of it (after reaping everything;
    the conftest check then finds no process left)."""
    room.signal(sig)
    if traced:  # trace lines are no notices: skip Forkchat's stderr check
        Proc.assert_signaled(room, sig)
    else:
        room.assert_signaled(sig)


class Client(Peer):
    """A raw TCP client of the room, reading whole lines. `rcvbuf`: its
    socket's receive buffer (small, for a client that reads little)."""

    def __init__(self, port, host="127.0.0.1", rcvbuf=None, welcome=True):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(5)
        s.connect((host, port))
        super().__init__(s)
        self.name = None
        if welcome:
            self.name = self.expect_re(WELCOME).group(1).decode()

    def __repr__(self):
        return self.name or f"client on port {self.port}"

    def _more(self, deadline, what):
        if self.eof or not self.read_more(deadline.left()):
            raise AssertionError(
                f"{self.name}: {what} within {deadline.seconds} s "
                f"({'EOF' if self.eof else 'timeout'}); have {bytes(self.buf)[:300]!r}"
            )

    def line(self, timeout=10.0) -> bytes:
        """The next line, without its newline."""
        deadline = Deadline(timeout)
        while b"\n" not in self.buf:
            self._more(deadline, "no complete line")
        end = self.buf.index(b"\n")
        line = bytes(self.buf[:end])
        del self.buf[: end + 1]
        return line

    def expect_line(self, expected: bytes, timeout=10.0, what=""):
        """The next line is `expected` (a marker line: nothing came before it)."""
        got = self.line(timeout)
        assert got == expected, f"{self.name}: expected line {expected!r} {what}, got {got!r}"

    def expect_re(self, pattern: bytes, timeout=10.0):
        deadline = Deadline(timeout)
        rx = re.compile(pattern)
        while not (m := rx.match(bytes(self.buf))):
            self._more(deadline, f"expected {pattern!r}")
        del self.buf[: m.end()]
        return m

    def say(self, text: bytes):
        self.send(text + b"\n")


def join(port, count, **kwargs):
    """`count` clients, joined one after the other; every earlier client has
    read the join notices of the later ones."""
    clients = []
    for _ in range(count):
        newcomer = Client(port, **kwargs)
        for c in clients:
            c.expect_line(f"* {newcomer.name} joined".encode())
        clients.append(newcomer)
    return clients


def connect_quietly(port, count, rcvbuf=None):
    """`count` clients that connect and read their welcome, without reading
    the join notices of those after them: for many clients at once."""
    return [Client(port, rcvbuf=rcvbuf) for _ in range(count)]


# ---------------------------------------------------------------------------
# Many clients at once


class Readers(threading.Thread):
    """Reads the sockets of several clients in one background thread (one
    thread, not one each: Python threads take turns on one lock, and a
    client that falls far enough behind would rightly be dropped), stamping
    each line with the time it came."""

    def __init__(self, clients):
        super().__init__(daemon=True)
        self.lines = {c.name: [] for c in clients}  # name -> [(time, line)]
        self.ended = {}
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        for c in clients:
            c.sock.setblocking(False)
            self.selector.register(c.sock, selectors.EVENT_READ, [c, b""])
        self.start()

    def run(self):
        deadline = Deadline(50)
        while not self.stopping and not deadline.passed and self.selector.get_map():
            for key, _ in self.selector.select(0.1):
                c, buf = key.data
                try:
                    data = c.sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                except OSError as e:
                    data, self.ended[c.name] = b"", repr(e)
                if not data:
                    self.ended.setdefault(c.name, "eof")
                    self.selector.unregister(c.sock)
                    continue
                now = time.monotonic()
                *complete, key.data[1] = (buf + data).split(b"\n")
                self.lines[c.name] += [(now, l) for l in complete]

    def wait_for(self, client, line, timeout=10.0):
        """The time `line` reached `client`."""

        def arrived():
            return next((when for when, l in list(self.lines[client.name]) if l == line), None)

        return wait_until(arrived, timeout, f"{client.name} to get {line!r} ({self.ended.get(client.name, 'open')})",
                          interval=0.005)

    def of(self, client):
        return [l for _, l in self.lines[client.name]]

    def finish(self):
        self.stopping = True
        self.join(5)
        for key in list(self.selector.get_map().values()):
            key.data[0].sock.setblocking(True)


class Traffic:
    """Clients sending and reading at once, in one thread (one event loop:
    a thread per client would mostly wait for Python's global lock).

    outgoing: {client: bytes to send}, written in `chunk`-byte pieces that
    cut lines anywhere, as the sockets take them. rate: {client: bytes per
    second} for a client that reads at that pace (0: never reads); the
    others read as fast as they can. Lines received are in `lines`, with the
    time each came in `times`; `ended` tells who was closed, and how."""

    def __init__(self, clients, outgoing=None, rate=None, chunk=1777):
        self.clients = clients
        self.outgoing = {c: memoryview(data) for c, data in (outgoing or {}).items()}
        self.rate = rate or {}
        self.chunk = chunk
        self.lines = {c: [] for c in clients}
        self.times = {c: [] for c in clients}
        self.ended = {}
        self.read_bytes = {c: 0 for c in clients}
        self._last_sent = {}  # the last byte sent by each client
        self.started = None

    def _read(self, c, limit):
        try:
            data = c.sock.recv(limit)
        except BlockingIOError:
            return
        except OSError as e:
            data, self.ended[c] = b"", repr(e)
        if not data:
            self.ended.setdefault(c, "eof")
            return
        self.read_bytes[c] += len(data)
        c.buf += data
        now = time.monotonic()
        while (end := c.buf.find(b"\n")) >= 0:
            self.lines[c].append(bytes(c.buf[:end]))
            self.times[c].append(now)
            del c.buf[: end + 1]

    def _send(self, c):
        """One piece, cut anywhere; then at once the rest of the line it
        cut, in a second send(2), if the socket takes it. The room makes a
        line of bytes without a newline after 0.2 s of silence (the course's
        scripts send no newline): a client that paused mid-line (a test
        process starved by a loaded machine) would have its line cut in
        two. Two sends back to back still reach the room as two segments.
        A client the room has closed (dropped, reset) is ended, not an
        error: it sends no more."""
        for piece in ("chunk", "rest of the line"):
            data = self.outgoing[c]
            if piece == "chunk":
                data = data[: self.chunk]
            else:
                end = bytes(data[: LINE_LIMIT + 2]).find(b"\n")
                if end < 0 or not self._last_sent.get(c) or self._last_sent[c] == b"\n":
                    return
                data = data[: end + 1]
            try:
                sent = c.sock.send(data)
            except BlockingIOError:
                return
            except OSError as e:
                self.ended.setdefault(c, repr(e))
                self.outgoing[c] = memoryview(b"")
                return
            if sent:
                self._last_sent[c] = bytes(self.outgoing[c][sent - 1 : sent])
            self.outgoing[c] = self.outgoing[c][sent:]
            if sent < len(data):
                return

    def run(self, until, timeout, tick=None):
        """Sends and reads until `until()` is true (then returns the time it
        took) or `timeout` s have passed (then fails). `tick()` runs every
        turn of the loop."""
        self.started = self.started or time.monotonic()
        deadline = Deadline(timeout)
        selector = selectors.DefaultSelector()
        for c in self.clients:
            c.sock.setblocking(False)
            events = (selectors.EVENT_WRITE if self.outgoing.get(c) else 0) | (
                selectors.EVENT_READ if c not in self.rate else 0)
            if events:
                selector.register(c.sock, events, c)
        try:
            while not until():
                if deadline.passed:
                    raise AssertionError(f"traffic: not done within {timeout} s; lines received: "
                                         + ", ".join(f"{c.name} {len(v)}" for c, v in self.lines.items()))
                for key, events in selector.select(0.01):
                    c, wanted = key.data, key.events
                    if events & selectors.EVENT_WRITE:
                        self._send(c)
                        if not self.outgoing[c] or c in self.ended:
                            wanted &= ~selectors.EVENT_WRITE
                    if events & selectors.EVENT_READ:
                        self._read(c, 1 << 20)
                        if c in self.ended:
                            wanted &= ~selectors.EVENT_READ
                    if wanted != key.events:
                        selector.unregister(c.sock)
                        if wanted:
                            selector.register(c.sock, wanted, c)
                elapsed = time.monotonic() - self.started
                for c, rate in self.rate.items():
                    allowance = int(rate * elapsed) - self.read_bytes[c]
                    if rate and allowance > 0 and c not in self.ended:
                        self._read(c, allowance)
                if tick:
                    tick()
            return time.monotonic() - self.started
        finally:
            selector.close()
            for c in self.clients:
                c.sock.setblocking(True)


# ---------------------------------------------------------------------------
# The room's processes, through /proc


def pids_of(room, readers=None):
    """(spawner pid, [reader pids]) of a running room; with `readers`, waits
    until that many readers run (the hub greets a client before the spawner
    has forked its reader)."""
    spawners = [p.pid for p in children_of(room.pid) if p.state != "Z"]
    assert len(spawners) == 1, f"expected one spawner, found {spawners}" + room.describe()

    def running():
        found = [p.pid for p in children_of(spawners[0]) if p.state != "Z"]
        return found if readers is None or len(found) == readers else None

    return spawners[0], wait_until(running, what=f"{readers} reader processes") if readers else running()


def descriptors(pid):
    """{fd number: link target} of a process (/proc/PID/fd)."""
    table = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            table[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            pass
    return table


def zombies_under(pid):
    out = []
    for p in children_of(pid):
        if p.state == "Z":
            out.append(p)
        out += zombies_under(p.pid)
    return out


def vm_rss_kib(pid) -> int:
    """The resident set of a process (VmRSS in /proc/PID/status), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
