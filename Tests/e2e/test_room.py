"""forkchat room: the chat room, end to end.

Every test runs the real binary (`forkchat room --bind 127.0.0.1 PORT`) and
talks to it with raw Python sockets, nc, `forkchat connect` and a client
written like the course's Python scripts. Processes are checked through
/proc: the hub, its spawner, one reader per client; after each test the
conftest check finds none of them left. Names are guest-N, N counting the
clients the room has let in, from 1.
"""

import os
import re
import selectors
import signal
import socket
import sys
import threading
import time

import pytest

from harness import (
    HAVE_IPV6,
    Forkchat,
    Peer,
    Proc,
    children_of,
    expect_orphans,
    free_port,
    proc_table,
    require_tool,
)

LINE_LIMIT = 4000  # RoomLimits.lineBytes
WELCOME = rb"\* welcome to the room, (guest-\d+)! (\d+ others?) here\. /help lists the commands\.\n"


# ---------------------------------------------------------------------------
# Helpers


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
    """A raw TCP client of the room, reading whole lines."""

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

    def line(self, timeout=10.0) -> bytes:
        """The next line, without its newline."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof or not self._fill(deadline):
                raise AssertionError(
                    f"{self.name}: no complete line within {timeout} s "
                    f"({'EOF' if self.eof else 'timeout'}); have {bytes(self.buf)[:300]!r}"
                )
        end = self.buf.index(b"\n")
        line = bytes(self.buf[:end])
        del self.buf[: end + 1]
        return line

    def expect_line(self, expected: bytes, timeout=10.0):
        got = self.line(timeout)
        assert got == expected, f"{self.name}: expected line {expected!r}, got {got!r}"

    def expect_re(self, pattern: bytes, timeout=10.0):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.match(bytes(self.buf))
            if m:
                del self.buf[: m.end()]
                return m
            if self.eof or not self._fill(deadline):
                raise AssertionError(f"{self.name}: expected {pattern!r}, got {bytes(self.buf)[:300]!r}")

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


def wait_until(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def zombies_under(pid):
    out = []
    for p in children_of(pid):
        if p.state == "Z":
            out.append(p)
        out += zombies_under(p.pid)
    return out


# ---------------------------------------------------------------------------
# The basics


def test_join_relay_and_leave():
    room, port = start_room()
    a = Client(port)
    assert a.name == "guest-1"
    b = Client(port)
    assert b.name == "guest-2"
    a.expect_line(b"* guest-2 joined")
    a.say(b"hello from a")
    b.expect_line(b"guest-1: hello from a")
    b.say(b"and from b")
    a.expect_line(b"guest-2: and from b")
    a.expect_nothing(0.3, "(a client never gets its own line back)")
    b.close()
    a.expect_line(b"* guest-2 left")
    a.say(b"anyone?")
    a.expect_nothing(0.2)
    stop_room(room)
    a.expect_line(b"* the room is closing")
    a.expect_eof()
    err = room.err_text()
    assert "forkchat: guest-1 joined from 127.0.0.1 port" in err and "forkchat: guest-2 left\n" in err, room.describe()


def test_commands_nick_who_me_help_unknown_escape():
    room, port = start_room()
    a, b, c = join(port, 3)
    a.say(b"/nick alice")
    for x in (a, b, c):
        x.expect_line(b"* guest-1 is now known as alice")
    b.say(b"/NICK Alice")  # names are unique whatever their case
    b.expect_line(b"* the name Alice is taken")
    b.say(b"/nick guest-3")
    b.expect_line(b"* cannot take that name: names guest-N are given by the room")
    b.say(b"/nick two words")
    b.expect_line(b"* cannot take that name: a name holds only letters, digits, '-', '_' and '.'")
    b.say(b"/nick \x1b[31mred")
    b.expect_line(b"* cannot take that name: a name holds only letters, digits, '-', '_' and '.'")
    b.send(b"/nick b\x00b\n")
    b.expect_line(b"* cannot take that name: a name holds only letters, digits, '-', '_' and '.'")
    b.say(b"/nick \xff\xfe")
    b.expect_line(b"* usage: /nick NAME (you are guest-2)")  # telnet IAC bytes are dropped: nothing left
    b.say(b"/nick " + b"x" * 25)
    b.expect_line(b"* cannot take that name: a name holds at most 24 bytes")
    b.say("/nick Zoé".encode())
    for x in (a, b, c):
        x.expect_line("* guest-2 is now known as Zoé".encode())
    b.say("/nick Zoé".encode())
    b.expect_line("* you are already Zoé".encode())
    c.say(b"/who")
    c.expect_line("* 3 here: alice, Zoé, guest-3 (you)".encode())
    c.say(b"/me waves")
    a.expect_line(b"* guest-3 waves")
    b.expect_line(b"* guest-3 waves")
    c.say(b"/me")
    c.expect_line(b"* usage: /me ACTION")
    c.say(b"/dance")
    c.expect_line(b"* unknown command /dance; /help lists the commands")
    c.say(b"//dance")
    a.expect_line(b"guest-3: /dance")
    b.expect_line(b"guest-3: /dance")
    c.say(b"/help")
    helptext = [c.line() for _ in range(6)]
    assert helptext[0].startswith(b"* /nick NAME") and helptext[3].startswith(b"* /quit"), helptext
    a.say(b"/quit")
    a.expect_line(b"* bye, alice")
    a.expect_eof(what="(after /quit the room closes the connection)")
    b.expect_line(b"* alice left")
    c.expect_line(b"* alice left")
    b.say(b"/nick alice")  # a name is free again once its holder has left
    b.expect_line("* Zoé is now known as alice".encode())
    c.expect_line("* Zoé is now known as alice".encode())
    stop_room(room)


def test_telnet_crlf_course_script_without_newline_and_sanitizing():
    room, port = start_room()
    a, b = join(port, 2)
    a.send(b"from telnet\r\n")
    b.expect_line(b"guest-1: from telnet")
    # Ctrl-C in telnet: IAC IP, IAC DO TIMING-MARK; nothing reaches anyone.
    a.send(b"\xff\xf4\xff\xfd\x06")
    b.expect_nothing(0.4)
    # The course's scripts send a message without a newline: a line after 0.2 s of silence.
    a.send(b"bonjour")
    started = time.monotonic()
    b.expect_line(b"guest-1: bonjour", timeout=3)
    assert time.monotonic() - started < 1.5
    # Control characters and invalid UTF-8 cannot reach anyone's terminal.
    a.send(b"\x1b[2Jclear\x00nul \x07bell \xc3\x28 ok \xc2\x9b \xe2\x80\xae\n")
    b.expect_line(b"guest-1: ^[[2Jclear^@nul ^Gbell \xef\xbf\xbd( ok \xef\xbf\xbd \xef\xbf\xbd")
    a.send("accents é ✓ 😀\ttab\n".encode())
    b.expect_line("guest-1: accents é ✓ 😀\ttab".encode())
    a.send(b"\n\r\n\n")  # empty lines are not lines
    b.expect_nothing(0.3)
    stop_room(room)


def test_long_line_is_cut_with_a_notice():
    room, port = start_room()
    a, b = join(port, 2)
    a.send(b"x" * 9000 + b"\n" + b"after\n")
    got = b.line()
    assert got == b"guest-1: " + b"x" * LINE_LIMIT, f"{len(got)} bytes"
    a.expect_line(b"* your line was cut to 4000 bytes")
    b.expect_line(b"guest-1: after")
    a.send(b"y" * LINE_LIMIT + b"\r\n")  # exactly the limit: whole
    assert b.line() == b"guest-1: " + b"y" * LINE_LIMIT
    a.expect_nothing(0.2)
    stop_room(room)


def test_eof_delivers_the_last_line_then_the_room_closes_gracefully():
    room, port = start_room()
    a, b = join(port, 2)
    b.send(b"last words without a newline")
    b.shutdown_write()
    a.expect_line(b"guest-2: last words without a newline")
    a.expect_line(b"* guest-2 left")
    b.expect_eof(what="(the room closes after a client's FIN)")
    stop_room(room)


@pytest.mark.parametrize("partial", [True, False], ids=["mid-line", "between-lines"])
def test_reset_leaves_no_half_line(partial):
    room, port = start_room()
    a, b = join(port, 2)
    b.send(b"a whole line\n" + (b"half a li" if partial else b""))
    a.expect_line(b"guest-2: a whole line")
    b.reset()
    a.expect_line(b"* guest-2 left (connection reset)")
    a.say(b"still here")
    a.expect_nothing(0.5, "(no half line, ever)")
    assert b"half" not in a.buf
    stop_room(room)


def test_room_full():
    room, port = start_room("--max-clients", "3")
    clients = join(port, 3)
    extra = Client(port, welcome=False)
    extra.expect_line(b"* the room is full (3 clients); try again later")
    assert extra.closed_by_other_side() in ("eof", "reset")
    room.wait_err(r"forkchat: refused 127\.0\.0\.1 port \d+: the room is full")
    clients[0].expect_nothing(0.2, "(a refused client is no member)")
    clients[2].close()
    clients[0].expect_line(b"* guest-3 left")
    clients[1].expect_line(b"* guest-3 left")
    newcomer = Client(port)
    assert newcomer.name == "guest-4"
    stop_room(room)


# ---------------------------------------------------------------------------
# Many clients: whole lines, one order


def test_fifty_clients_every_line_whole_in_one_order():
    room, port = start_room()
    # 6 lines each, 3.5 KB: what every client receives (170 KB) fits in
    # what the room keeps for a client that does not read at all, so the
    # test holds however slowly Python reads 50 sockets.
    count, per_client = 50, 6
    clients = join(port, count)
    names = [c.name for c in clients]
    sizes = [5, 60, 300, 3000, 40, 120]

    def text(sender, k):
        return f"{sender} {k} ".encode() + bytes([97 + (k + len(sender)) % 26]) * sizes[k % len(sizes)]

    # All 50 send at once, in chunks that cut lines anywhere, while all
    # read: one event loop (a thread per client would mostly wait for
    # Python's global lock, and a client that falls far enough behind is
    # rightly dropped).
    outgoing = {c.name: b"".join(text(c.name, k) + b"\n" for k in range(per_client)) for c in clients}
    received = {c.name: [] for c in clients}
    expected_per_client = (count - 1) * per_client
    selector = selectors.DefaultSelector()
    for c in clients:
        c.sock.setblocking(False)
        selector.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    deadline = time.monotonic() + 40
    done = 0
    while done < count:
        assert time.monotonic() < deadline, {n: len(v) for n, v in received.items()}
        for key, events in selector.select(0.5):
            c = key.data
            if events & selectors.EVENT_WRITE:
                try:
                    sent = c.sock.send(outgoing[c.name][:1777])
                except BlockingIOError:
                    sent = 0
                outgoing[c.name] = outgoing[c.name][sent:]
                if not outgoing[c.name]:
                    selector.modify(c.sock, selectors.EVENT_READ, c)
            if not events & selectors.EVENT_READ:
                continue
            try:
                data = c.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            assert data, f"{c.name}: the room closed the connection" + room.describe()
            c.buf += data
            while b"\n" in c.buf:
                end = c.buf.index(b"\n")
                line = bytes(c.buf[:end])
                del c.buf[: end + 1]
                received[c.name].append(line)
                if len(received[c.name]) == expected_per_client:
                    done += 1
    for c in clients:
        selector.unregister(c.sock)
        c.sock.setblocking(True)

    sent = {n: [n.encode() + b": " + text(n, k) for k in range(per_client)] for n in names}
    for n, lines in received.items():
        assert len(lines) == expected_per_client, f"{n}: {len(lines)} lines"
        for sender in names:
            from_sender = [l for l in lines if l.startswith(sender.encode() + b": ")]
            # Whole, and each sender's lines in the order it sent them.
            assert from_sender == ([] if sender == n else sent[sender]), f"{n} from {sender}"
    # One order for all: any two clients saw the lines of the others in the same order.
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            mine = [l for l in received[a] if not l.startswith(b.encode() + b": ")]
            theirs = [l for l in received[b] if not l.startswith(a.encode() + b": ")]
            assert mine == theirs, f"{a} and {b} saw different orders"
    stop_room(room)


# ---------------------------------------------------------------------------
# Slow, stopped and flooding clients


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
        deadline = time.monotonic() + 50
        while not self.stopping and time.monotonic() < deadline and self.selector.get_map():
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
        deadline = time.monotonic() + timeout
        while True:
            for when, l in list(self.lines[client.name]):
                if l == line:
                    return when
            if time.monotonic() > deadline:
                raise AssertionError(f"{client.name}: no line {line!r} within {timeout} s "
                                     f"({self.ended.get(client.name, 'open')})")
            time.sleep(0.005)

    def of(self, client):
        return [l for _, l in self.lines[client.name]]

    def finish(self):
        self.stopping = True
        self.join(5)
        for key in list(self.selector.get_map().values()):
            key.data[0].sock.setblocking(True)


def test_a_client_that_stops_reading_delays_nobody_and_is_dropped():
    room, port = start_room()
    a, b, *senders = join(port, 10)
    # The stalled client takes nothing: 4 KiB of receive buffer, never read.
    stalled = Client(port, rcvbuf=4096)
    for c in (a, b, *senders):
        c.expect_line(f"* {stalled.name} joined".encode())
    readers = Readers([a, b, *senders])
    payload = b"z" * 990

    # 8 x 60 KB in 0.6 s: more than the room keeps for one client (256 KiB
    # queued, beyond the socket buffers), each sender within its
    # flood-control burst, at a pace any reading client follows.
    def burst():
        for c in senders:
            c.sock.setblocking(True)
        for k in range(60):
            for c in senders:
                c.sock.sendall(f"{k:04d} ".encode() + payload + b"\n")
            time.sleep(0.01)

    thread = threading.Thread(target=burst, daemon=True)
    thread.start()
    # Meanwhile a talks to b: measured, line by line.
    delays = []
    for k in range(20):
        line = f"ping {k}".encode()
        sent_at = time.monotonic()
        try:
            a.sock.sendall(line + b"\n")
        except OSError as e:
            raise AssertionError(f"{a.name} cannot send: {e}" + room.describe()) from None
        delays.append(readers.wait_for(b, f"{a.name}: ".encode() + line, timeout=5) - sent_at)
        time.sleep(0.02)
    thread.join(20)
    drop = f"* {stalled.name} left (dropped: not reading)".encode()
    for c in (a, b, *senders):
        readers.wait_for(c, drop, timeout=10)
    assert max(delays) < 0.5, f"a's lines took up to {max(delays) * 1000:.0f} ms to reach b: {delays}"
    assert stalled.closed_by_other_side(timeout=10) in ("eof", "reset")
    room.wait_err(rf"forkchat: {stalled.name} \(127\.0\.0\.1 port \d+\) dropped: \d+ bytes queued, not reading")
    # Everyone else got everything, whole.
    for c in senders:
        got = [l for l in readers.of(a) if l.startswith(c.name.encode() + b": ")]
        assert got == [c.name.encode() + f": {k:04d} ".encode() + payload for k in range(60)]
    readers.finish()
    print(f"\nstalled reader: a -> b delays max {max(delays) * 1000:.1f} ms, "
          f"median {sorted(delays)[len(delays) // 2] * 1000:.1f} ms", file=sys.stderr)
    stop_room(room)


def test_a_flooding_client_cannot_starve_the_others():
    room, port = start_room()
    a, b, flood = join(port, 3)
    readers = Readers([a, b])
    flood.sock.settimeout(60)
    started = time.monotonic()
    stop = threading.Event()

    def flooder():
        # Short send timeouts, so that the thread notices `stop`: a socket
        # closed under a thread blocked in send(2) would stay open until it
        # returns.
        chunk = b"".join(f"flood {k:05d} ".encode() + b"f" * 1000 + b"\n" for k in range(64))
        flood.sock.settimeout(0.1)
        view = memoryview(chunk)
        while not stop.is_set():
            try:
                sent = flood.sock.send(view)
            except socket.timeout:
                continue
            except OSError:
                return
            view = view[sent:] or memoryview(chunk)

    t = threading.Thread(target=flooder, daemon=True)
    t.start()
    delays = []
    for k in range(15):
        line = f"hi {k}".encode()
        sent_at = time.monotonic()
        a.sock.sendall(line + b"\n")
        delays.append(readers.wait_for(b, f"{a.name}: ".encode() + line, timeout=5) - sent_at)
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    flooded = [l for l in readers.of(a) if l.startswith(flood.name.encode() + b": flood")]
    stop.set()
    t.join(10)
    # The flooder was told, and held to the burst plus the rate (a line costs its length).
    flood.sock.settimeout(5)
    notice = b"* slow down: past 64 KiB at once, the room takes 8 KiB/s from you\n"
    got = b""
    while notice not in got:
        data = flood.sock.recv(1 << 16)
        assert data, "the flooder was closed instead of slowed down"
        got += data
    allowed = (64 * 1024 + 8 * 1024 * elapsed) / 1012 + 2
    assert 40 <= len(flooded) <= allowed, f"{len(flooded)} flood lines reached a in {elapsed:.1f} s"
    assert all(l == flood.name.encode() + f": flood {k % 64:05d} ".encode() + b"f" * 1000 for k, l in
               enumerate(flooded)), "flood lines must arrive whole and in order"
    assert max(delays) < 0.5, f"a's lines took up to {max(delays) * 1000:.0f} ms while {flood.name} flooded"
    # A reset ends the flooder's reader at once, though its socket still
    # holds lines the room had not taken yet: they are dropped.
    flood.reset()
    readers.wait_for(b, f"* {flood.name} left (connection reset)".encode(), timeout=3)
    readers.finish()
    stop_room(room)


# ---------------------------------------------------------------------------
# Processes and descriptors


def test_processes_and_descriptors():
    room, port = start_room()
    a, b = join(port, 2)
    spawner, readers = pids_of(room, readers=2)
    hub_fds = descriptors(room.pid)
    sockets = {t for t in hub_fds.values() if t.startswith("socket:")}
    assert len(sockets) == 4, f"hub: listener, control socket, two clients: {hub_fds}"
    for reader in readers:
        # Right after fork it still has the spawner's: give it a moment.
        fds = wait_until(lambda: (lambda d: d if len(d) <= 5 else None)(descriptors(reader)),
                         what=f"reader {reader} to close what it does not own")
        # Standard input and output on /dev/null, standard error, its
        # client's socket, the room pipe's write end: nothing else.
        assert sorted(fds)[:3] == [0, 1, 2] and len(fds) == 5, f"reader {reader}: {fds}"
        assert fds[0] == fds[1] == "/dev/null", f"reader {reader}: {fds}"
        kinds = sorted(t.split(":")[0] for n, t in fds.items() if n > 2)
        assert kinds == ["pipe", "socket"], f"reader {reader}: {fds}"
        socket_target = next(t for t in fds.values() if t.startswith("socket:"))
        assert socket_target in sockets, "the reader's socket is one of the hub's client sockets"
    spawner_fds = descriptors(spawner)
    assert len(spawner_fds) == 7 and spawner_fds[0] == spawner_fds[1] == "/dev/null", (
        f"spawner: /dev/null twice, stderr, control socket, room pipe, signal pipe (2): {spawner_fds}"
    )
    with open(f"/proc/{readers[0]}/status") as f:
        parent = next(l for l in f if l.startswith("PPid:"))
    assert int(parent.split()[1]) == spawner
    stop_room(room)


def test_thousand_joins_and_leaves_leave_no_zombie_and_no_descriptor():
    room, port = start_room()
    watcher = Client(port)
    spawner, _ = pids_of(room, readers=1)
    base_hub, base_spawner = len(descriptors(room.pid)), len(descriptors(spawner))
    cycles, batch = 1000, 25
    joined = 0
    for round_ in range(cycles // batch):
        clients = [Client(port) for _ in range(batch)]
        joined += batch
        for k, c in enumerate(clients):
            if k % 5 == 0:
                c.say(b"hi")
            if k % 3 == 0:
                c.reset()
            elif k % 3 == 1:
                c.shutdown_write()
                c.read_to_eof(timeout=10)
            else:
                c.close()
        # The watcher reads as it goes (it would be dropped otherwise).
        watcher._fill(time.monotonic() + 0.05)
    left_re = re.compile(rb"\* guest-\d+ left")

    def all_left():
        watcher._fill(time.monotonic() + 0.1)
        return len(left_re.findall(bytes(watcher.buf))) >= cycles

    wait_until(all_left, timeout=30, what="1000 leave notices")
    assert len(re.findall(rb"\* guest-\d+ joined", bytes(watcher.buf))) == cycles
    watcher.buf.clear()
    watcher.say(b"/who")
    watcher.expect_line(f"* 1 here: {watcher.name} (you)".encode())

    def settled():
        readers = [p for p in children_of(spawner)]
        return (len(readers) == 1 and not zombies_under(room.pid)
                and len(descriptors(room.pid)) == base_hub and len(descriptors(spawner)) == base_spawner)

    wait_until(settled, timeout=5, what=f"1 reader, no zombie, {base_hub} descriptors in the hub")
    stop_room(room)


def test_a_killed_reader_takes_its_client_out():
    room, port = start_room(trace=True)
    a, b = join(port, 2)
    pid = int(room.wait_err(r"spawner reader (\d+) client=2").group(1))
    os.kill(pid, signal.SIGKILL)
    a.expect_line(b"* guest-2 left (its reader process signaled SIGKILL)")
    assert b.closed_by_other_side() in ("eof", "reset")
    a.say(b"still fine")
    c = Client(port)
    a.expect_line(f"* {c.name} joined".encode())
    c.say(b"hello")
    a.expect_line(f"{c.name}: hello".encode())
    stop_room(room, traced=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_signals_close_the_room_and_reap_everything(sig):
    room, port = start_room()
    a, b = join(port, 2)
    stop_room(room, sig)
    for c in (a, b):
        c.expect_line(b"* the room is closing")
        c.expect_eof()
    assert f"forkchat: closing the room ({signal.strsignal(sig)})" in room.err_text()


def test_the_spawner_killed_ends_the_room():
    expect_orphans()  # its readers die with it (PR_SET_PDEATHSIG) and are reaped by the test
    room, port = start_room()
    a, b = join(port, 2)
    spawner, readers = pids_of(room, readers=2)
    os.kill(spawner, signal.SIGKILL)
    room.assert_exit(1)
    assert f"the spawner process {spawner} killed by signal 9" in room.err_text(), room.describe()
    for c in (a, b):
        assert c.closed_by_other_side() in ("eof", "reset")


def test_the_hub_killed_takes_everything_with_it():
    expect_orphans()  # spawner and readers die of PR_SET_PDEATHSIG, reparented to the test
    room, port = start_room()
    a, b = join(port, 2)
    spawner, readers = pids_of(room, readers=2)
    os.kill(room.pid, signal.SIGKILL)
    room.wait()
    for c in (a, b):
        assert c.closed_by_other_side() in ("eof", "reset")
    gone = {spawner, *readers}
    wait_until(lambda: not [p for p in proc_table() if p.pid in gone and p.state != "Z"],
               what="the spawner and the readers to die")


def test_trace():
    room, port = start_room(trace=True)
    a, b = join(port, 2)
    a.say(b"traced")
    b.expect_line(b"guest-1: traced")
    room.wait_err(r"trace [\d.]+ \d+ room line client=1 to=1 in \d+ us\n")
    stop_room(room, traced=True)
    err = room.err_text()
    for event in ("room fork child=", "spawner start", "room sendmsg client=1", "spawner fork child=",
                  "spawner reader ", "reader start client=1", "room kill", "spawner exit signal SIGTERM",
                  "room exit signal SIGTERM"):
        assert event in err, f"missing trace event {event!r}" + room.describe()


# ---------------------------------------------------------------------------
# Other clients: nc, forkchat connect, the course's Python script; IPv6


def test_nc_and_forkchat_connect_as_clients():
    room, port = start_room()
    a = Client(port)
    nc = Proc([require_tool("nc"), "-N", "127.0.0.1", str(port)], stdin="pipe", name="nc")
    nc.wait_out(WELCOME)
    a.expect_line(b"* guest-2 joined")
    fc = Forkchat("connect", "127.0.0.1", str(port), stdin="pipe")
    fc.wait_out(WELCOME)
    a.expect_line(b"* guest-3 joined")
    nc.wait_out(rb"\* guest-3 joined\n")
    nc.send(b"from nc\n")
    a.expect_line(b"guest-2: from nc")
    fc.wait_out(rb"guest-2: from nc\n")
    fc.send(b"from forkchat\n")
    a.expect_line(b"guest-3: from forkchat")
    nc.wait_out(rb"guest-3: from forkchat\n")
    a.say(b"from python")
    nc.wait_out(rb"guest-1: from python\n")
    fc.wait_out(rb"guest-1: from python\n")
    nc.close_stdin()
    nc.assert_exit(0)
    a.expect_line(b"* guest-2 left")
    fc.close_stdin()
    fc.assert_exit(0)
    a.expect_line(b"* guest-3 left")
    stop_room(room)


COURSE_CLIENT = r"""
import socket, sys, threading
client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(("127.0.0.1", int(sys.argv[1])))
def receive():
    while True:
        message = client.recv(1024)
        if not message:
            break
        print(message.decode("utf-8"), end="", flush=True)
threading.Thread(target=receive, daemon=True).start()
while True:
    try:
        message = input()
    except EOFError:
        break
    client.send(message.encode("utf-8"))
client.close()
"""


def test_the_course_python_client():
    room, port = start_room()
    a = Client(port)
    script = Proc([sys.executable, "-c", COURSE_CLIENT, str(port)], stdin="pipe", name="course-client")
    script.wait_out(WELCOME)
    a.expect_line(b"* guest-2 joined")
    script.send(b"salut tout le monde\n")  # sent without its newline
    a.expect_line(b"guest-2: salut tout le monde", timeout=3)
    time.sleep(0.4)
    script.send("ça va ?\n".encode())
    a.expect_line("guest-2: ça va ?".encode(), timeout=3)
    a.say(b"oui")
    script.wait_out(rb"guest-1: oui\n")
    script.close_stdin()
    script.assert_exit(0)
    a.expect_line(b"* guest-2 left")
    stop_room(room)


@pytest.mark.skipif(not HAVE_IPV6, reason="no IPv6 on this machine")
def test_default_bind_takes_ipv4_and_ipv6():
    room, port = start_room(bind=None)
    a = Client(port, host="::1")
    b = Client(port, host="127.0.0.1")
    a.expect_line(b"* guest-2 joined")
    b.say(b"over IPv4")
    a.expect_line(b"guest-2: over IPv4")
    room.wait_err(r"forkchat: guest-1 joined from ::1 port \d+\n")
    stop_room(room)


# ---------------------------------------------------------------------------
# Command line


def test_room_help_and_usage_errors():
    p = Forkchat("room", "--help", stdin="devnull")
    assert p.wait() == 0
    out = p.out_text()
    for section in ("OVERVIEW:", "USAGE: forkchat room [<port>] [--bind <address>] [--max-clients <n>] [--trace]",
                    "ARGUMENTS:", "OPTIONS:", "--max-clients <n>", "-h, --help"):
        assert section in out, out
    p = Forkchat("--help", stdin="devnull")
    p.wait()
    assert re.search(r"\n  room +Host a chat room", p.out_text()), p.out_text()
    p = Forkchat("room", "--max-clients", "zero", stdin="devnull")
    assert p.wait() == 64
    assert p.err_text() == (
        "Error: Invalid value 'zero' for '--max-clients': expected a number from 1 to 100000.\n"
        "Usage: forkchat room [<port>] [--bind <address>] [--max-clients <n>] [--trace]\n"
        "  See 'forkchat room --help' for more information.\n"
    )


def test_port_in_use():
    port = free_port()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        p = Forkchat("room", str(port), "--bind", "127.0.0.1", stdin="devnull")
        p.assert_exit(1)
        assert p.err_text() == f"forkchat: bind to 127.0.0.1 port {port}: Address already in use\n", p.describe()
    finally:
        holder.close()
