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
import signal
import socket
import sys
import threading
import time

import pytest

from harness import HAVE_IPV6, Forkchat, Proc, children_of, expect_orphans, free_port, proc_table, require_tool, send_queue
from roomclient import (
    LINE_LIMIT,
    WELCOME,
    Client,
    Readers,
    Traffic,
    connect_quietly,
    descriptors,
    join,
    pids_of,
    start_room,
    stop_room,
    vm_rss_kib,
    wait_until,
    zombies_under,
)

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
    # b's marker is relayed after anything the room made of a's lines.
    b.say(b"marker")
    a.expect_line(b"guest-2: marker", what="(a client never gets its own line back)")
    b.close()
    a.expect_line(b"* guest-2 left")
    a.say(b"anyone?")
    stop_room(room)
    a.expect_line(b"* the room is closing")  # next: 'anyone?' came not back
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
    a.expect_line(b"guest-3 * waves")
    b.expect_line(b"guest-3 * waves")
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
    # (b's next line is the one below: nothing came of the interrupt.)
    # The course's scripts send a message without a newline: a line after
    # 0.2 s of silence (never sooner; load only makes it later).
    started = time.monotonic()
    a.send(b"bonjour")
    b.expect_line(b"guest-1: bonjour", timeout=10)
    assert time.monotonic() - started >= 0.19
    # Control characters and invalid UTF-8 cannot reach anyone's terminal.
    a.send(b"\x1b[2Jclear\x00nul \x07bell \xc3\x28 ok \xc2\x9b \xe2\x80\xae\n")
    b.expect_line(b"guest-1: ^[[2Jclear^@nul ^Gbell <C3>( ok <U+009B> <U+202E>")
    a.send("accents é ✓ 😀\ttab\n".encode())
    b.expect_line("guest-1: accents é ✓ 😀\ttab".encode())
    a.send(b"\n\r\n\n")  # empty lines are not lines
    a.say(b"marker")
    b.expect_line(b"guest-1: marker")  # next: nothing came of the empty lines
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
    b.say(b"marker")
    a.expect_line(b"guest-2: marker", what="(no cut notice for a line of exactly the limit)")
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
    stop_room(room)
    a.expect_line(b"* the room is closing", what="(no half line, ever)")
    assert b"half" not in a.buf


def test_room_full():
    room, port = start_room("--max-clients", "3")
    clients = join(port, 3)
    extra = Client(port, welcome=False)
    extra.expect_line(b"* the room is full (3 clients); try again later")
    assert extra.closed_by_other_side() in ("eof", "reset")
    room.wait_err(r"forkchat: refused 127\.0\.0\.1 port \d+: the room is full")
    clients[2].close()
    clients[0].expect_line(b"* guest-3 left", what="(next: a refused client is no member)")
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

    # All 50 send at once, in chunks that cut lines anywhere, while all read.
    expected_per_client = (count - 1) * per_client
    traffic = Traffic(clients, outgoing={c: b"".join(text(c.name, k) + b"\n" for k in range(per_client))
                                         for c in clients})

    def done():
        assert not traffic.ended, f"closed by the room: {traffic.ended}" + room.describe()
        return all(len(lines) >= expected_per_client for lines in traffic.lines.values())

    traffic.run(done, timeout=40)
    received = {c.name: lines for c, lines in traffic.lines.items()}
    sent = {n: [n.encode() + b": " + text(n, k) for k in range(per_client)] for n in names}
    everything = {l for lines in sent.values() for l in lines}
    for n, lines in received.items():
        unexpected = [l[:80] for l in lines if l not in everything]
        assert len(lines) == expected_per_client, f"{n}: {len(lines)} lines; not sent by anyone: {unexpected[:10]}"
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


def lines_of(sender, count, size):
    """`count` lines of `size` bytes from `sender`, numbered."""
    return [f"{sender.name} {k:03d} ".encode().ljust(size, b"p") for k in range(count)]


def test_a_class_pastes_at_once_and_every_reader_gets_every_line():
    # 40 clients each paste 80 lines of 480 bytes (38 KB, within each one's
    # flood-control burst) at the same moment, all reading as they go; one
    # more only reads, one never reads. The log holds the burst: every
    # reader gets all 3200 lines, whole and in one order; the one that
    # never reads is dropped once it has taken nothing for 3 s (--stall).
    room, port = start_room("--stall", "3")
    senders = connect_quietly(port, 40)
    listener = Client(port)
    absent = Client(port, rcvbuf=4096)
    pasted = {c: lines_of(c, 80, 480) for c in senders}
    traffic = Traffic(senders + [listener], outgoing={c: b"".join(l + b"\n" for l in pasted[c]) for c in senders})

    def said(c):
        return [l for l in traffic.lines[c] if b": " in l and l.startswith(b"guest-")]

    def everything_delivered():
        assert not traffic.ended, f"a reading client was closed: {traffic.ended}" + room.describe()
        return all(len(said(c)) == 80 * (40 if c is listener else 39) for c in traffic.lines)

    took = traffic.run(everything_delivered, timeout=40)
    drop = f"* {absent.name} left (dropped: took nothing for 3 s)".encode()
    traffic.run(lambda: drop in traffic.lines[listener], timeout=15)
    expected = [c.name.encode() + b": " + l for c in senders for l in pasted[c]]
    order = said(listener)
    assert sorted(order) == sorted(expected), "the listener got every line, whole"
    for c in senders:
        mine = c.name.encode() + b": "
        assert said(c) == [l for l in order if not l.startswith(mine)], f"{c.name}: the same lines in the same order"
        assert [l for l in order if l.startswith(mine)] == [mine + l for l in pasted[c]], f"{c.name}'s order"
    left = [l for c in traffic.lines for l in traffic.lines[c] if b" left" in l and l.startswith(b"* ")]
    assert set(left) == {drop}, f"only the client that never reads leaves: {set(left)}"
    # (How long it took is make bench-room's to measure, against the
    # course's relay and ngircd: here it only has to arrive, whole.)
    print(f"\nclass paste: 3200 lines x 480 B delivered to 41 readers in {took:.2f} s", file=sys.stderr)
    stop_room(room)


def test_a_slow_steady_reader_is_not_dropped():
    # A client that reads 20 KB/s through a small receive buffer, while 8
    # others send 200 KB at once: it is behind for about 10 s, more than
    # three times the stall time (3 s), but its socket takes something
    # every second or so, so it stays and gets every line in order.
    room, port = start_room("--stall", "3")
    slow = Client(port, rcvbuf=8192)
    senders = connect_quietly(port, 8)
    sent = {c: lines_of(c, 25, 1000) for c in senders}
    traffic = Traffic([slow, *senders], outgoing={c: b"".join(l + b"\n" for l in sent[c]) for c in senders},
                      rate={slow: 20_000})

    def received():
        return [l for l in traffic.lines[slow] if l.startswith(b"guest-")]

    def all_in():
        assert slow not in traffic.ended, f"the slow reader was closed: {traffic.ended[slow]}" + room.describe()
        return len(received()) == 200

    took = traffic.run(all_in, timeout=40)
    assert took > 6, f"the slow reader was behind for only {took:.1f} s: not a test of the stall time"
    for c in senders:
        mine = c.name.encode() + b": "
        assert [l for l in received() if l.startswith(mine)] == [mine + l for l in sent[c]]
    assert b" left" not in b"".join(traffic.lines[slow]), "nobody left"
    print(f"\nslow reader: 200 KB at 20 KB/s in {took:.1f} s, never dropped", file=sys.stderr)
    stop_room(room)


def test_the_hub_holds_no_more_than_its_log():
    # A log of 2 MiB, 200 clients sending 16 KB each at once (3.2 MB, beyond
    # what the log holds): 20 read, 180 never do. The log is full in a
    # fraction of a second, those who never read are a whole log behind and
    # dropped, and the hub's resident memory grows by the log at most.
    room, port = start_room("--log-size", "2", "--max-clients", "250")
    readers = connect_quietly(port, 20)
    silent = connect_quietly(port, 180, rcvbuf=4096)
    base = vm_rss_kib(room.pid)
    peak = [base]
    sent = {c: lines_of(c, 16, 1000) for c in readers + silent}
    traffic = Traffic(readers + silent, outgoing={c: b"".join(l + b"\n" for l in sent[c]) for c in sent},
                      rate={c: 0 for c in silent})

    def from_readers(c):
        return [l for l in traffic.lines[c] if any(l.startswith(r.name.encode() + b": ") for r in readers)]

    def done():
        assert not [c for c in readers if c in traffic.ended], f"a reader was closed: {traffic.ended}"
        return all(len(from_readers(c)) == 19 * 16 for c in readers)

    took = traffic.run(done, timeout=40, tick=lambda: peak.append(vm_rss_kib(room.pid)))
    dropped = {l for l in traffic.lines[readers[0]] if l.endswith(b" left (dropped: a whole log, 2 MiB, behind)")}
    assert len(dropped) >= 100, f"those who never read are dropped: {len(dropped)}"
    assert not any(l.startswith(f"* {r.name} left".encode()) for r in readers for l in traffic.lines[readers[0]])
    for c in readers:
        for r in readers:
            mine = r.name.encode() + b": "
            got = [l for l in traffic.lines[c] if l.startswith(mine)]
            assert got == ([] if r is c else [mine + l for l in sent[r]]), f"{c.name} from {r.name}"
    grown = max(peak) - base
    print(f"\nhub VmRSS: {base} KiB before, {max(peak)} KiB at most ({grown} KiB more, log 2048 KiB); "
          f"{len(dropped)} dropped; {took:.1f} s", file=sys.stderr)
    assert grown <= 2048 + 512, f"the hub grew by {grown} KiB, more than its 2 MiB log"
    stop_room(room)


def test_a_client_that_stops_reading_delays_nobody_and_is_dropped():
    room, port = start_room("--stall", "2")
    a, b, *senders = join(port, 10)
    # The stalled client takes nothing: 4 KiB of receive buffer, never read.
    stalled = Client(port, rcvbuf=4096)
    for c in (a, b, *senders):
        c.expect_line(f"* {stalled.name} joined".encode())
    readers = Readers([a, b, *senders])
    payload = b"z" * 990

    # 8 x 60 KB in 0.6 s, each sender within its flood-control burst, at a
    # pace any reading client follows: far more than the stalled client's
    # socket holds; it takes nothing for 2 s (--stall) and is dropped.
    def burst():
        for c in senders:
            c.sock.setblocking(True)
        for k in range(60):
            for c in senders:
                c.sock.sendall(f"{k:04d} ".encode() + payload + b"\n")
            time.sleep(0.01)

    thread = threading.Thread(target=burst, daemon=True)
    thread.start()
    drop = f"* {stalled.name} left (dropped: took nothing for 2 s)".encode()

    def dropped_at():  # when b learnt of the drop (None: not yet)
        return next((when for when, l in list(readers.lines[b.name]) if l == drop), None)

    def stalling():  # the room's socket to the stalled client is full
        return (send_queue(port, stalled.port) or 0) >= 8192

    # The stall is in effect: the room holds more than the stalled client's
    # window in its socket to it. Meanwhile a talks to b, line by line: a
    # line sent during the stall must reach b before the stall ends (the
    # drop), not wait behind it. Load only makes fewer lines fit in the
    # stall; one is enough, and the first is sent at once.
    wait_until(stalling, timeout=10, interval=0.005, what="the room to hold lines for the stalled client")
    delays, during_stall = [], 0
    for k in range(20):
        line = f"ping {k}".encode()
        in_stall = stalling() and dropped_at() is None
        sent_at = time.monotonic()
        try:
            a.sock.sendall(line + b"\n")
        except OSError as e:
            raise AssertionError(f"{a.name} cannot send: {e}" + room.describe()) from None
        came = readers.wait_for(b, f"{a.name}: ".encode() + line, timeout=10)
        delays.append(came - sent_at)
        if in_stall and (dropped_at() is None or came < dropped_at()):
            during_stall += 1
        time.sleep(0.02)
    thread.join(20)
    for c in (a, b, *senders):
        readers.wait_for(c, drop, timeout=10)
    assert during_stall >= 1, f"none of a's lines reached b during the stall: delays {delays}"
    assert stalled.closed_by_other_side(timeout=10) in ("eof", "reset")
    room.wait_err(rf"forkchat: {stalled.name} \(127\.0\.0\.1 port \d+\) dropped: took nothing for 2 s\n")
    # Everyone else got everything, whole.
    for c in senders:
        got = [l for l in readers.of(a) if l.startswith(c.name.encode() + b": ")]
        assert got == [c.name.encode() + f": {k:04d} ".encode() + payload for k in range(60)]
    readers.finish()
    print(f"\nstalled reader: {during_stall} of a's lines passed during the stall; a -> b delays max "
          f"{max(delays) * 1000:.1f} ms, median {sorted(delays)[len(delays) // 2] * 1000:.1f} ms", file=sys.stderr)
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
        came = readers.wait_for(b, f"{a.name}: ".encode() + line, timeout=5)
        delays.append(came - sent_at)
        time.sleep(0.1)
    # The flood goes on after a's last line reached b: a's lines were not
    # waiting for the flood to end (a starved a gets its line through only
    # then, or never: the 5 s above are less than the 6.4 s the room takes
    # to pass the flooder's 51 KiB burst at 8 KiB/s).
    flood_line = flood.name.encode() + b": flood"
    wait_until(lambda: any(when > came and l.startswith(flood_line) for when, l in list(readers.lines[b.name])),
               timeout=10, what="a flood line after a's last line")
    elapsed = time.monotonic() - started
    flooded = [l for l in readers.of(a) if l.startswith(flood.name.encode() + b": flood")]
    stop.set()
    t.join(10)
    # The flooder was told, and held to the burst plus the rate.
    flood.sock.settimeout(5)
    notice = re.compile(rb"\* slow down: past (\d+) KiB at once, the room takes 8 KiB/s from you\n")
    got = b""
    while not notice.search(got):
        data = flood.sock.recv(1 << 16)
        assert data, "the flooder was closed instead of slowed down"
        got += data
    burst = int(notice.search(got).group(1))
    assert burst == 51, "64 MiB of log shared by 1000 clients (docs/room.md)"
    allowed = (burst * 1024 + 8 * 1024 * elapsed) / (1012 + 27) + 2  # a line costs its length and "NAME: ", "\n"
    assert 40 <= len(flooded) <= allowed, f"{len(flooded)} flood lines reached a in {elapsed:.1f} s"
    assert all(l == flood.name.encode() + f": flood {k % 64:05d} ".encode() + b"f" * 1000 for k, l in
               enumerate(flooded)), "flood lines must arrive whole and in order"
    print(f"\nflood: a -> b delays max {max(delays) * 1000:.1f} ms", file=sys.stderr)
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
        watcher.read_more(0.05)
    left_re = re.compile(rb"\* guest-\d+ left")

    def all_left():
        watcher.read_more(0.1)
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
    room.wait_err(r"trace [\d.]+ \d+ room line client=1 bytes=6\n")
    room.wait_err(r"trace [\d.]+ \d+ room fanout clients=1 in \d+ us\n")
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


def test_telnet_ctrl_c_then_lines_still_arrive():
    # The real telnet client on a pseudo-terminal. Ctrl-C makes telnet send
    # IAC IP, IAC DO TIMING-MARK and throw away everything it receives until
    # the mark is answered (RFC 860): the room answers, so the user sees the
    # lines that follow, and can still type.
    telnet = require_tool("telnet")
    room, port = start_room(trace=True)
    a = Client(port)
    t = Proc([telnet, "127.0.0.1", str(port)], stdin="pty", name="telnet")
    t.wait_out(rb"\* welcome to the room, guest-2! 1 other here\.")
    a.expect_line(b"* guest-2 joined")
    a.say(b"before ctrl-c")
    t.wait_out(rb"guest-1: before ctrl-c\r?\n")
    t.send(b"\x03")
    room.wait_err(r"room telnet client=2 WILL 6\n")
    a.say(b"after ctrl-c")
    t.wait_out(rb"guest-1: after ctrl-c\r?\n")
    t.type(b"typed after\r")
    a.expect_line(b"guest-2: typed after")
    t.type(b"marker\r")
    a.expect_line(b"guest-2: marker", what="(the interrupt itself reaches nobody)")
    stop_room(room, traced=True)
    t.wait_out(rb"\* the room is closing")
    t.wait()


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
    a.expect_line(b"guest-2: salut tout le monde", timeout=10)
    script.send("ça va ?\n".encode())  # the room has cut the first line: a new one
    a.expect_line("guest-2: ça va ?".encode(), timeout=10)
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
    usage = ("forkchat room [<port>] [--bind <address>] [--max-clients <n>]\n"
             "                     [--log-size <MiB>] [--stall <seconds>] [--max-per-host <n>]\n"
             "                     [--silent <seconds>] [--dead-peer <seconds>] [--trace]")
    for section in ("OVERVIEW:", f"USAGE: {usage}", "ARGUMENTS:", "OPTIONS:", "--max-clients <n>", "--log-size <MiB>",
                    "--stall <seconds>", "(default: 60)", "-h, --help", "commands: /nick NAME, /who, /me ACTION, /quit, /help."):
        assert section in out, out
    p = Forkchat("--help", stdin="devnull")
    p.wait()
    assert re.search(r"\n  room +Host a chat room", p.out_text()), p.out_text()
    p = Forkchat("room", "--max-clients", "zero", stdin="devnull")
    assert p.wait() == 64
    assert p.err_text() == (
        "Error: Invalid value 'zero' for '--max-clients': expected a number from 1 to 100000.\n"
        f"Usage: {usage}\n"
        "  See 'forkchat room --help' for more information.\n"
    )
    p = Forkchat("room", "--stall", "1.5", stdin="devnull")
    assert p.wait() == 64
    assert p.err_text().startswith("Error: Invalid value '1.5' for '--stall': expected a number from 1 to 86400.\n")


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
