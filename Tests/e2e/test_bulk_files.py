"""Bulk data through the plumbing a user has: a regular file as stdin (sent
with sendfile(2)), a regular file, /dev/null or a pipe as stdout (spliced
through forkchat's own pipe, or straight into the pipe), a file opened
O_APPEND (which splice(2) refuses with EINVAL: read and write take over),
and a peer that leaves in the middle of a transfer. Sizes are well above a
pipe's 64 KiB, so that every path runs many times; every byte is compared.
In fork mode (the default) and in threads and poll mode, which share the
receiving side."""

import os
import re
import signal
import threading
import time

import pytest

from harness import (
    CONTRACT_MODES,
    LISTEN_RE,
    Forkchat,
    Peer,
    free_port,
    listen_socket,
    mode_args,
    require_tool,
    sha,
    start_listener,
)

MODES = CONTRACT_MODES  # default (fork without --mode), threads, poll
MiB = 1 << 20
SIZE = 8 * MiB + 12345  # not a multiple of a page, a pipe or a buffer


def data_file(tmp_path, size=SIZE):
    path = tmp_path / "source"
    data = os.urandom(size)
    path.write_bytes(data)
    return path, data


def file_to_sink(mode, tmp_path, sink, flags=0):
    """forkchat connect (stdin: a regular file) → forkchat listen (stdout:
    `sink`, "file" or "devnull", stdin /dev/null). Returns the listener,
    the client, the data sent and the received file's path."""
    source, data = data_file(tmp_path)
    received = tmp_path / "received"
    port = free_port()
    out = os.open(received if sink == "file" else os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags, 0o600)
    try:
        listener = start_listener(port, *mode_args(mode), stdin="devnull", stdout=out)
    finally:
        os.close(out)
    with open(source, "rb") as f:
        client = Forkchat("connect", "127.0.0.1", str(port), *mode_args(mode), stdin=f.fileno(),
                          stdout="devnull")
    return listener, client, data, received


@pytest.mark.parametrize("mode", MODES)
def test_file_stdin_to_file_stdout(mode, tmp_path):
    listener, client, data, received = file_to_sink(mode, tmp_path, "file")
    client.assert_exit(0, timeout=20)
    listener.assert_exit(0, timeout=20)
    got = received.read_bytes()
    assert len(got) == len(data) and sha(got) == sha(data), f"file has {len(got)} of {len(data)} bytes" + listener.describe()
    assert "closed the connection" in listener.err_text(), listener.describe()


@pytest.mark.parametrize("mode", MODES)
def test_stdout_opened_for_appending_falls_back_to_write(mode, tmp_path):
    """splice(2) refuses a file opened O_APPEND (EINVAL) once bytes are in
    forkchat's pipe: those and all the rest still reach the file, in order."""
    listener, client, data, received = file_to_sink(mode, tmp_path, "file", flags=os.O_APPEND)
    client.assert_exit(0, timeout=20)
    listener.assert_exit(0, timeout=20)
    got = received.read_bytes()
    assert len(got) == len(data) and sha(got) == sha(data), f"file has {len(got)} of {len(data)} bytes" + listener.describe()
    assert "forkchat: write" not in listener.err_text(), listener.describe()


@pytest.mark.parametrize("mode", MODES)
def test_file_stdin_to_dev_null(mode, tmp_path):
    listener, client, data, _ = file_to_sink(mode, tmp_path, "devnull")
    client.assert_exit(0, timeout=20)
    listener.assert_exit(0, timeout=20)
    for side in (listener, client):
        assert "forkchat: read" not in side.err_text() and "forkchat: write" not in side.err_text(), side.describe()


@pytest.mark.parametrize("mode", MODES)
def test_file_stdin_to_a_pipe(mode, tmp_path):
    """A regular file in, the peer's side a pipe (the harness reads it)."""
    source, data = data_file(tmp_path)
    port = free_port()
    listener = start_listener(port, *mode_args(mode), stdin="devnull")
    with open(source, "rb") as f:
        client = Forkchat("connect", "127.0.0.1", str(port), *mode_args(mode), stdin=f.fileno(), stdout="devnull")
    client.assert_exit(0, timeout=20)
    listener.assert_exit(0, timeout=20)
    got = listener.out_bytes()
    assert len(got) == len(data) and sha(got) == sha(data), f"pipe got {len(got)} of {len(data)} bytes" + listener.describe()


@pytest.mark.parametrize("mode", ["default", "poll"])
def test_the_kernel_moves_the_bytes(mode, tmp_path):
    """What the two ends call while a file goes to a file (strace -f): the
    sender sendfile(2), the receiver splice(2) and no write(2) of the data;
    each side's calls counted, a dozen writes at most (notices, the trace of
    start-up), against 128 or more for 64 KiB blocks. The poll mode sends
    the file with sendfile(2) too, when poll(2) says the socket has room."""
    strace = require_tool("strace")

    def traced(log):
        return (strace, "-f", "-qq", "-e", "trace=sendfile,splice,write", "-o", str(log))

    # Both sides at once, each under its own strace.
    source, data = data_file(tmp_path)
    received = tmp_path / "received"
    port = free_port()
    counts = {}
    logs = {side: tmp_path / f"{side}.strace" for side in ("listen", "connect")}
    out = os.open(received, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        listener = Forkchat("listen", str(port), *mode_args(mode), stdin="devnull", stdout=out,
                            prefix=traced(logs["listen"]))
    finally:
        os.close(out)
    listener.wait_err(LISTEN_RE % port)
    with open(source, "rb") as f:
        client = Forkchat("connect", "127.0.0.1", str(port), *mode_args(mode), stdin=f.fileno(), stdout="devnull",
                          prefix=traced(logs["connect"]))
    client.assert_exit(0, timeout=30)
    listener.assert_exit(0, timeout=30)
    assert sha(received.read_bytes()) == sha(data)
    for side, log in logs.items():
        text = log.read_text()
        counts[side] = {call: len(re.findall(rf"^\d+ +{call}\(", text, re.M)) for call in ("sendfile", "splice", "write")}
    assert counts["connect"]["sendfile"] >= 1 and counts["connect"]["write"] <= 12, counts
    assert counts["listen"]["splice"] >= 2, counts
    if mode == "default":
        # The poll mode's receiving side returns to poll(2) after each
        # splice: a splice that then finds less than half a buffer goes
        # back to read(2) and write(2), now and then, under load.
        assert counts["listen"]["write"] <= 12, counts


@pytest.mark.parametrize("mode", ["default", "poll"])
def test_peer_leaves_while_a_file_is_sent(mode, tmp_path):
    """A peer that resets the connection after 1 MiB of a 64 MiB file: the
    sending side's sendfile(2) fails (the child's, or the poll mode's one
    process) and forkchat ends with one line and exit 1, no process left
    behind."""
    source, _ = data_file(tmp_path, 64 * MiB)
    port = free_port()
    server = listen_socket(port)
    with open(source, "rb") as f:
        fc = Forkchat("connect", "127.0.0.1", str(port), *mode_args(mode), stdin=f.fileno(), stdout="devnull")
    peer = Peer.accept(server, timeout=10)
    server.close()
    got = 0
    while got < MiB:
        assert peer.read_more(10), "nothing came" + fc.describe()
        got = len(peer.buf)
    peer.reset()
    fc.assert_exit(1, timeout=10)
    err = fc.err_text()
    assert re.search(r"forkchat: (read from|write to) 127\.0\.0\.1 port \d+: (Connection reset by peer|Broken pipe)\n", err), fc.describe()


@pytest.mark.parametrize("mode", MODES)
def test_peer_leaves_while_forkchat_writes_a_file(mode, tmp_path):
    """The peer sends 8 MiB and resets: forkchat says so, exits 1, and the
    file holds a prefix of what was sent, no byte changed or reordered."""
    received = tmp_path / "received"
    data = os.urandom(SIZE)
    port = free_port()
    server = listen_socket(port)
    out = os.open(received, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        fc = Forkchat("connect", "127.0.0.1", str(port), *mode_args(mode), stdin="pipe", stdout=out)
    finally:
        os.close(out)
    peer = Peer.accept(server, timeout=10)
    server.close()
    peer.sock.sendall(data)
    peer.reset()
    fc.assert_exit(1, timeout=10)
    assert re.search(r"forkchat: read from 127\.0\.0\.1 port \d+: Connection reset by peer\n", fc.err_text()), fc.describe()
    got = received.read_bytes()
    assert got == data[: len(got)], f"the file's {len(got)} bytes are not a prefix of what was sent"


def stream(peer, size, block=bytes(MiB)):
    sent = 0
    while sent < size:
        sent += peer.sock.send(block[: min(len(block), size - sent)])


def test_bulk_received_without_a_poll_per_splice(tmp_path):
    """Fork mode, 32 MiB from the peer into a pipe, under strace -f: the
    receiving parent stays in splice(2) while bulk data flows, as the splice
    relay does, instead of a poll(2) before each one (main before this
    change: 1 poll per splice); its wait for the socket is bounded by
    SO_RCVTIMEO (100 ms), so when the peer pauses the splice comes back
    with EAGAIN and the loop polls again; a line after the pause still
    arrives whole, and every byte in order."""
    strace = require_tool("strace")
    log = tmp_path / "connect.strace"
    port = free_port()
    server = listen_socket(port)
    fc = Forkchat("connect", "127.0.0.1", str(port), stdin="pipe",
                  prefix=(strace, "-f", "-qq", "-e", "trace=splice,poll,setsockopt", "-o", str(log)))
    peer = Peer.accept(server, timeout=10)
    server.close()
    data = os.urandom(32 * MiB)
    peer.sock.sendall(data)
    fc.wait_out_bytes(data[-4096:], timeout=30)
    time.sleep(0.5)  # the peer pauses: the splice's wait times out
    peer.sock.sendall(b"after the pause\n")
    fc.wait_out_bytes(b"after the pause\n", timeout=10)
    fc.close_stdin()
    peer.close()
    fc.assert_exit(0, timeout=20)
    assert bytes(fc.out_bytes()) == data + b"after the pause\n"
    text = log.read_text()
    splices = len(re.findall(r"^\d+ +splice\(3, ", text, re.M))
    polls = len(re.findall(r"^\d+ +poll\(\[\{fd=\d+, events=POLLIN\}, \{fd=3, ", text, re.M))
    assert splices >= 32 * MiB // (64 << 10) // 2, (splices, polls)
    assert polls * 2 < splices, f"{polls} polls for {splices} splices"
    # struct timeval {0, 100000}, as strace shows its 16 bytes.
    timeval = r'"(\\0){8}\\240\\206\\1(\\0){5}", 16'
    assert re.search(r"setsockopt\(3, SOL_SOCKET, SO_RCVTIMEO(_OLD)?, " + timeval + r"\) = 0", text), text[-2000:]
    assert re.search(r"^\d+ +splice\(3, .*= -1 EAGAIN", text, re.M), "no splice timed out during the pause"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("flowing", [True, False], ids=["flowing", "paused"])
def test_signal_while_bulk_data_is_received(sig, flowing):
    """Fork mode: the receiving parent, in its splice(2) loop while bulk
    data flows (or waiting in it just after the flow paused), dies of the
    signal at once, its child with it, no process left."""
    port = free_port()
    server = listen_socket(port)
    fc = Forkchat("connect", "127.0.0.1", str(port), stdin="pipe", stdout="devnull")
    peer = Peer.accept(server, timeout=10)
    server.close()
    stop = threading.Event()

    def flood():
        try:
            while not stop.is_set():
                stream(peer, 4 * MiB)
                if not flowing:
                    stop.wait()
        except OSError:
            pass

    sender = threading.Thread(target=flood)
    sender.start()
    try:
        time.sleep(0.3 if flowing else 0.15)
        os.kill(fc.pid, sig)
        fc.assert_signaled(sig, timeout=2)
    finally:
        stop.set()
        peer.close()
        sender.join(5)
