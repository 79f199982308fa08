"""listen --echo: the ping-pong server. Every byte received goes back to its
sender. Without --keep: one client, served by the process itself, then exit
0 after the client's FIN. With --keep: one forked process per client, all
reaped; a stop signal stops and reaps them, then kills the server."""

import os
import re
import signal

import pytest

from harness import (
    Forkchat,
    Peer,
    free_port,
    proc_children,
    proc_table,
    start_listener,
    wait_sessions_empty,
    wait_until,
)

PAYLOADS = {
    "line": b"ping\n",
    "binary": bytes(range(256)) * 16 + b"\x00\r\n\xff",
    "no-newline": b"no newline at the end",
    "1mb": os.urandom(1_000_000),
}


def echo_server(*args, stdin="devnull"):
    port = free_port()
    fc = start_listener(port, "--echo", *args, stdin=stdin)
    return fc, port


def connect_client(fc, port, source=None) -> Peer:
    peer = Peer.connect("127.0.0.1", port, source=source)
    fc.wait_err(rf"forkchat: connection from {re.escape(peer.local[0])} port {peer.port}\n")
    return peer


def closed_notice(peer) -> str:
    return rf"forkchat: {re.escape(peer.local[0])} port {peer.port} closed the connection\n"


def live_children(pid):
    """The server's children (zombies included: a zombie is not reaped yet)."""
    return proc_children(pid)


def wait_children(pid, count, timeout=5.0):
    wait_until(lambda: len(live_children(pid)) == count, timeout)
    return live_children(pid)


def zombies_of(pid):
    return [p for p in proc_table() if p.ppid == pid and p.state == "Z"]


# --- one client --------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS, ids=list(PAYLOADS))
def test_single_client_gets_its_bytes_back(payload):
    data = PAYLOADS[payload]
    fc, port = echo_server()
    peer = connect_client(fc, port)
    assert live_children(fc.pid) == [], "without --keep the server echoes in its own process" + fc.describe()
    sender = peer.send_async(data)  # read back while sending: the echo fills the buffers
    peer.expect(data, timeout=15, what="(echoed)")
    sender.join(10)
    peer.shutdown_write()
    peer.expect_eof(what="(the server sends its FIN after the client's)")
    fc.assert_exit(0)
    fc.wait_err(closed_notice(peer))
    assert fc.out_bytes() == b"", "the echo server prints nothing on stdout" + fc.describe()


def test_ping_pong_line_by_line():
    fc, port = echo_server(stdin="pipe")
    peer = connect_client(fc, port)
    for n in range(5):
        peer.send(f"ping {n}\n".encode())
        peer.expect(f"ping {n}\n".encode())
        peer.expect_nothing_from(fc, "(each byte comes back once)")
    fc.send(b"stdin is not used\n")
    peer.expect_nothing_from(fc, "(stdin is not sent to the client)")
    peer.shutdown_write()
    peer.expect_eof()
    fc.assert_exit(0)


def test_without_keep_one_client_only():
    fc, port = echo_server()
    first = connect_client(fc, port)
    with pytest.raises(ConnectionRefusedError):
        Peer.connect("127.0.0.1", port)
    first.send(b"still served\n")
    first.expect(b"still served\n")
    first.shutdown_write()
    first.expect_eof()
    fc.assert_exit(0)


def test_forkchat_client_against_echo_server():
    fc, port = echo_server()
    client = Forkchat("connect", "127.0.0.1", str(port), "--mode", "threads", stdin="pipe")
    client.wait_err(rf"forkchat: connected to 127\.0\.0\.1 port {port}\n")
    client.send(b"marco\n")
    client.wait_out_bytes(b"marco\n")
    client.send(b"polo\n")
    client.wait_out_bytes(b"marco\npolo\n")
    client.close_stdin()
    client.assert_exit(0)
    fc.assert_exit(0)
    assert client.out_bytes() == b"marco\npolo\n", client.describe()


def test_client_reset_is_an_error():
    fc, port = echo_server()
    peer = connect_client(fc, port)
    peer.send(b"x\n")
    peer.expect(b"x\n")
    peer.reset()
    fc.assert_exit(1)
    assert re.search(r"forkchat: read from 127\.0\.0\.1 port \d+: Connection reset by peer\n", fc.err_text()), fc.describe()


# --- --keep: one process per client ------------------------------------------

CLIENTS = 6


def test_keep_serves_concurrent_clients_each_in_its_own_process():
    fc, port = echo_server("--keep")
    peers = [connect_client(fc, port) for _ in range(CLIENTS)]
    kids = wait_children(fc.pid, CLIENTS)
    assert len(kids) == CLIENTS, f"one child per client expected, found {kids}" + fc.describe()
    table = {p.pid: p for p in proc_table()}
    assert all(table[k].state != "Z" for k in kids), f"children alive while their clients are: {kids}"

    # Interleaved, each client's bytes distinct: each gets only its own back.
    sent = [bytearray() for _ in peers]
    for rnd in range(3):
        for i, peer in enumerate(peers):
            chunk = f"client {i} round {rnd}\n".encode() + os.urandom(4096) + b"\n"
            peer.send(chunk)
            sent[i] += chunk
    for i, peer in enumerate(peers):
        peer.expect(bytes(sent[i]), what=f"(client {i}'s own bytes)")
        peer.expect_nothing_from(fc, f"(client {i} gets nobody else's bytes)")

    # They leave one by one; the server goes on and reaps each child.
    for n, peer in enumerate(peers):
        peer.shutdown_write()
        peer.expect_eof()
        peer.close()
        fc.wait_err(closed_notice(peer))
        left = wait_children(fc.pid, CLIENTS - n - 1)
        assert len(left) == CLIENTS - n - 1, f"child not reaped after its client left: {left}" + fc.describe()
    assert wait_children(fc.pid, 0) == [] and zombies_of(fc.pid) == [], fc.describe()
    fc.assert_running("(--keep: it waits for more clients)")

    # And serves again afterwards.
    again = connect_client(fc, port)
    again.send(b"once more\n")
    again.expect(b"once more\n")
    again.shutdown_write()
    again.expect_eof()
    assert wait_children(fc.pid, 0) == [], fc.describe()
    fc.signal(signal.SIGTERM)
    fc.assert_signaled(signal.SIGTERM, timeout=5)
    assert fc.out_bytes() == b"", fc.describe()


def test_keep_client_reset_ends_only_its_child():
    fc, port = echo_server("--keep")
    stays = connect_client(fc, port)
    goes = connect_client(fc, port)
    assert len(wait_children(fc.pid, 2)) == 2, fc.describe()
    goes.reset()
    fc.wait_err(r"forkchat: read from 127\.0\.0\.1 port \d+: Connection reset by peer\n")
    assert len(wait_children(fc.pid, 1)) == 1 and zombies_of(fc.pid) == [], fc.describe()
    stays.send(b"unaffected\n")
    stays.expect(b"unaffected\n")
    fc.signal(signal.SIGINT)
    fc.assert_signaled(signal.SIGINT, timeout=5)
    assert stays.closed_by_other_side() == "eof"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_keep_stop_signal_with_live_clients(sig):
    fc, port = echo_server("--keep")
    peers = [connect_client(fc, port) for _ in range(5)]
    for i, peer in enumerate(peers):
        peer.send(f"hello {i}\n".encode())
        peer.expect(f"hello {i}\n".encode())
    kids = wait_children(fc.pid, 5)
    assert len(kids) == 5, fc.describe()
    fc.signal(sig)
    rc = fc.assert_signaled(sig, timeout=5)
    assert rc == -sig, fc.describe()
    left = wait_sessions_empty([fc.pid], timeout=1.0)
    assert not left, f"echo processes left after the server died: {left}" + fc.describe()
    for peer in peers:
        assert peer.closed_by_other_side() in ("eof", "reset")
    # The harness also checks that no child was left for init to reap.


# --- --allow -----------------------------------------------------------------


@pytest.mark.parametrize("keep", [False, True], ids=["once", "keep"])
def test_allow_with_echo(keep):
    fc, port = echo_server("--allow", "127.0.0.1", *(["--keep"] if keep else []))
    stranger_port, how, echoed = Peer.turned_away("127.0.0.1", port, source="127.0.0.2")
    fc.wait_err(
        rf"forkchat: refused connection from 127\.0\.0\.2 port {stranger_port} \(not --allow 127\.0\.0\.1\)\n"
    )
    assert how == "reset", "the refused client is reset at once"
    assert b"let me in" not in echoed, "nothing is echoed to a refused client"
    fc.assert_running("(it waits for an allowed client)")
    friend = connect_client(fc, port)
    friend.send(b"friend\n")
    friend.expect(b"friend\n")
    friend.shutdown_write()
    friend.expect_eof()
    if keep:
        assert wait_children(fc.pid, 0) == [], fc.describe()
        fc.signal(signal.SIGTERM)
        fc.assert_signaled(signal.SIGTERM, timeout=5)
    else:
        fc.assert_exit(0)
    assert "forkchat: connection from 127.0.0.2" not in fc.err_text(), fc.describe()
