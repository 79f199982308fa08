"""listen --keep, one chat at a time, connect --retry, listen --allow,
IPv6 and localhost, -4 and -6. (--mode is in test_transfer.py,
test_teardown.py, test_alternate.py; this file is about the listening and
connecting options.) --keep is also run in threads and poll mode."""

import re
import signal
import time

import pytest

from harness import (
    CONTRACT_MODES,
    HAVE_IPV6,
    LISTEN_RE,
    Forkchat,
    Peer,
    accept_queue,
    free_port,
    mode_args,
    start_listener,
)

needs_ipv6 = pytest.mark.skipif(not HAVE_IPV6, reason="no IPv6 loopback on this machine")


def connection_from(fc, peer: Peer, host="127.0.0.1"):
    fc.wait_err(rf"forkchat: connection from {re.escape(host)} port {peer.port}\n")


def exchange(fc, peer, tag: str, terminal: bool):
    """One line each way between forkchat and a raw peer."""
    fc.send(f"to {tag}\n".encode())
    peer.expect(f"to {tag}\n".encode(), what=f"(forkchat -> {tag})")
    peer.send(f"from {tag}\n".encode())
    fc.wait_out_bytes(f"{'< ' if terminal else ''}from {tag}\n".encode())


# --- --keep ------------------------------------------------------------------


@pytest.mark.parametrize("mode", CONTRACT_MODES)
def test_keep_serves_peers_in_turn_and_queues_the_third(mode):
    port = free_port()
    fc = start_listener(port, "--keep", *mode_args(mode), stdin="pty")
    first = Peer.connect("127.0.0.1", port)
    connection_from(fc, first)
    exchange(fc, first, "first", terminal=True)

    # A third party connects while the first chat is live: it is queued, and
    # what it sends must not reach the live chat.
    third = Peer.connect("127.0.0.1", port)
    third.send(b"third was here\n")
    fc.type(b"only for first\n")
    first.expect(b"only for first\n")
    # A round trip of the live chat after third's line arrived: forkchat ran
    # past that moment; third is still in the kernel's accept queue (never
    # accepted, so it can get nothing), and its line went nowhere.
    first.send(b"and back\n")
    fc.wait_out_bytes(b"< and back\n")
    assert accept_queue(port) == 1, f"third should wait in the accept queue: {accept_queue(port)}" + fc.describe()
    assert b"third was here" not in fc.out_bytes(), "the queued peer's data leaked into the live chat" + fc.describe()
    assert f"port {third.port}" not in fc.err_text(), fc.describe()

    first.send(b"first leaves\n")
    first.close()
    fc.wait_err(rf"forkchat: 127\.0\.0\.1 port {first.port} closed the connection\n")
    fc.wait_err(rf"forkchat: waiting for the next peer on :: port {port} \(IPv6 and IPv4\)\n")
    # Now the queued peer is served.
    connection_from(fc, third)
    fc.wait_out_bytes(b"< third was here\n")
    exchange(fc, third, "third", terminal=True)
    third.expect_nothing_before(b"marker\n", lambda: fc.type(b"marker\n"),
                                "(nothing typed for the first chat goes to the next peer)")
    third.shutdown_write()
    fc.wait_err(rf"forkchat: 127\.0\.0\.1 port {third.port} closed the connection\n")
    third.expect_eof(what="(forkchat ends its side once the peer has closed on a terminal)")
    fc.wait_err(r"(?s)(.*?waiting for the next peer on :: port \d+ \(IPv6 and IPv4\)\n){2}")

    # And a fourth, after both.
    fourth = Peer.connect("127.0.0.1", port)
    connection_from(fc, fourth)
    exchange(fc, fourth, "fourth", terminal=True)
    fc.send(b"\x03")
    fc.assert_signaled(signal.SIGINT, timeout=5)
    assert fourth.closed_by_other_side() == "eof"
    out = fc.out_text()
    order = [out.index(s) for s in ("< from first", "< and back", "< first leaves", "< third was here", "< from third", "< from fourth")]
    assert order == sorted(order), fc.describe()


@pytest.mark.parametrize("mode", CONTRACT_MODES)
def test_keep_with_empty_input_serves_several_peers(mode):
    port = free_port()
    fc = start_listener(port, "--keep", *mode_args(mode), stdin="devnull")
    for n in range(3):
        peer = Peer.connect("127.0.0.1", port)
        connection_from(fc, peer)
        peer.expect_eof(what="(stdin is empty)")
        peer.send(f"peer {n}\n".encode())
        peer.close()
        fc.wait_err(rf"forkchat: 127\.0\.0\.1 port {peer.port} closed the connection\n")
        fc.wait_out_bytes(f"peer {n}\n".encode())
    fc.wait_err(r"(?s)(.*?waiting for the next peer on :: port \d+ \(IPv6 and IPv4\)\n){3}")
    fc.signal(signal.SIGTERM)
    fc.assert_signaled(signal.SIGTERM, timeout=5)
    assert fc.out_bytes() == b"peer 0\npeer 1\npeer 2\n", fc.describe()


def test_without_keep_a_second_connection_is_refused():
    port = free_port()
    fc = start_listener(port, stdin="pipe")
    first = Peer.connect("127.0.0.1", port)
    connection_from(fc, first)
    exchange(fc, first, "first", terminal=False)
    with pytest.raises(ConnectionRefusedError):
        Peer.connect("127.0.0.1", port)
    if HAVE_IPV6:
        with pytest.raises(ConnectionRefusedError):
            Peer.connect("::1", port)
    exchange(fc, first, "first again", terminal=False)
    fc.close_stdin()
    first.expect_eof()
    first.close()
    fc.assert_exit(0)
    assert "connection from" in fc.err_text() and fc.err_text().count("connection from") == 1, fc.describe()


# --- --retry -----------------------------------------------------------------


def test_retry_until_the_server_starts():
    port = free_port()
    client = Forkchat("connect", "127.0.0.1", str(port), "--retry", "5", stdin="pipe")
    client.wait_err(rf"\Aforkchat: connect to 127\.0\.0\.1 port {port}: Connection refused; retrying for 5 s\n")
    time.sleep(0.5)
    listener = start_listener(port, stdin="pipe")
    # Connected once the server is there, within the 5 s of --retry (the
    # 100 ms between attempts is test_trace.py's, from the attempts' times).
    client.wait_err(rf"forkchat: connected to 127\.0\.0\.1 port {port}\n", timeout=10)
    listener.wait_err(r"forkchat: connection from 127\.0\.0\.1 port \d+\n")
    client.send(b"from client\n")
    listener.wait_out_bytes(b"from client\n")
    listener.send(b"from listener\n")
    client.wait_out_bytes(b"from listener\n")
    client.close_stdin()
    listener.close_stdin()
    client.assert_exit(0)
    listener.assert_exit(0)
    assert client.err_text().count("retrying") == 1, client.describe()
    assert client.out_bytes() == b"from listener\n" and listener.out_bytes() == b"from client\n"


# (the retry that times out is in test_cli.py)


# --- --allow -----------------------------------------------------------------


def test_allow_accepts_the_allowed_address():
    port = free_port()
    fc = start_listener(port, "--allow", "127.0.0.1", stdin="pipe")
    peer = Peer.connect("127.0.0.1", port)
    connection_from(fc, peer)
    exchange(fc, peer, "allowed", terminal=False)
    fc.close_stdin()
    peer.expect_eof()
    peer.close()
    fc.assert_exit(0)
    assert "refused" not in fc.err_text(), fc.describe()


@needs_ipv6
@pytest.mark.parametrize("mode", ["default", "threads", "poll"])
def test_a_refused_forkchat_says_so_once(mode):
    """forkchat connect, refused by --allow with its input already at its
    end: whether the reset comes during connect(2) or after, one line names
    it, exit 1 (the sending side's FIN finds nothing to shut down: not an
    error of its own)."""
    port = free_port()
    fc = start_listener(port, "--allow", "127.0.0.2", "--keep", stdin="devnull")
    for _ in range(10):
        client = Forkchat("connect", "127.0.0.1", str(port), *mode_args(mode), stdin="devnull")
        client.assert_exit(1)
        errors = [l for l in client.err_text().splitlines() if "Connection reset by peer" in l or "shutdown" in l]
        assert len(errors) == 1 and "Connection reset by peer" in errors[0], client.describe()
    fc.signal(signal.SIGTERM)
    fc.assert_signaled(signal.SIGTERM)


def test_allow_refuses_others_and_keeps_waiting():
    port = free_port()
    fc = start_listener(port, "--allow", "::1", stdin="pipe")
    stranger_port, how, _ = Peer.turned_away("127.0.0.1", port)
    fc.wait_err(rf"forkchat: refused connection from 127\.0\.0\.1 port {stranger_port} \(not --allow ::1\)\n")
    # Reset (SO_LINGER 0), not closed: the refused peer learns it was turned away.
    assert how == "reset", "the refused peer is reset at once"
    fc.assert_running("(it keeps waiting for an allowed peer)")
    friend = Peer.connect("::1", port)
    connection_from(fc, friend, host="::1")
    exchange(fc, friend, "friend", terminal=False)
    fc.close_stdin()
    friend.expect_eof()
    friend.close()
    fc.assert_exit(0)
    assert "forkchat: connection from 127.0.0.1" not in fc.err_text(), fc.describe()


# --- IPv6, localhost, -4, -6 -------------------------------------------------


def chat_both_ways(listener, client):
    client.send(b"c->l\n")
    listener.wait_out_bytes(b"c->l\n")
    listener.send(b"l->c\n")
    client.wait_out_bytes(b"l->c\n")
    client.close_stdin()
    listener.close_stdin()
    client.assert_exit(0)
    listener.assert_exit(0)


def connect_and_chat(listener, port, *connect_args, address):
    """forkchat connect `connect_args` PORT to `listener`: both ends name
    `address` (a regex) in their notices, then a line goes each way."""
    client = Forkchat("connect", *connect_args, str(port), stdin="pipe")
    client.wait_err(rf"forkchat: connected to {address} port {port}\n")
    listener.wait_err(rf"forkchat: connection from {address} port \d+\n")
    chat_both_ways(listener, client)


@needs_ipv6
def test_connect_to_ipv6_loopback():
    port = free_port()
    listener = start_listener(port, stdin="pipe")
    connect_and_chat(listener, port, "::1", address=r"::1")


@pytest.mark.parametrize("listen_args", [[], ["-4"]], ids=["dual-stack", "listen-4"])
def test_connect_to_localhost(listen_args):
    """localhost works whether ::1 or 127.0.0.1 answers."""
    port = free_port()
    expect = (LISTEN_RE % port) if not listen_args else rf"forkchat: listening on 0\.0\.0\.0 port {port}\n"
    listener = start_listener(port, *listen_args, stdin="pipe", expect=expect)
    connect_and_chat(listener, port, "localhost", address=r"(127\.0\.0\.1|::1)")


@needs_ipv6
def test_listen_ipv4_only():
    port = free_port()
    listener = start_listener(port, "-4", stdin="pipe", expect=rf"\Aforkchat: listening on 0\.0\.0\.0 port {port}\n")
    with pytest.raises(ConnectionRefusedError):
        Peer.connect("::1", port)
    connect_and_chat(listener, port, "-4", "localhost", address=r"127\.0\.0\.1")


@needs_ipv6
def test_listen_ipv6_only():
    port = free_port()
    listener = start_listener(port, "-6", stdin="pipe", expect=rf"\Aforkchat: listening on :: port {port}\n")
    with pytest.raises(ConnectionRefusedError):
        Peer.connect("127.0.0.1", port)
    connect_and_chat(listener, port, "-6", "::1", address=r"::1")


def test_ipv4_mapped_peer_shown_as_ipv4():
    port = free_port()
    fc = start_listener(port, stdin="devnull")
    peer = Peer.connect("127.0.0.1", port)
    connection_from(fc, peer)
    assert "::ffff:" not in fc.err_text(), fc.describe()
    peer.expect_eof()
    peer.close()
    fc.assert_exit(0)


def test_bind_loopback_only():
    port = free_port()
    fc = start_listener(port, "--bind", "127.0.0.1", stdin="devnull",
                        expect=rf"\Aforkchat: listening on 127\.0\.0\.1 port {port}\n")
    if HAVE_IPV6:
        with pytest.raises(ConnectionRefusedError):
            Peer.connect("::1", port)
    peer = Peer.connect("127.0.0.1", port)
    connection_from(fc, peer)
    peer.expect_eof()
    peer.close()
    fc.assert_exit(0)
