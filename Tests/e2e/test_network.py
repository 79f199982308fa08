"""Networks that die without a word (issue 10, rows 5 and 6).

A two-host network is built inside each test (netns.py: two network
namespaces joined by a veth pair, private addresses); a peer vanishes when
its end of the link goes down. Those tests need root: without it they are
skipped loudly, and fail under CI=true. The tests that need no second host
(a stopped peer, the default keepalive timer) run over loopback.

What must hold: a vanished peer is noticed within --dead-peer seconds,
idle or busy, in every mode and both roles, and the one line that says so
names the peer and says "Connection timed out" (never "closed the
connection" or "Broken pipe"); a connection try gives up after
--connect-timeout seconds and says so."""

import os
import re
import signal
import time

import pytest

from harness import Forkchat, children_of, free_port, mode_args, parse_trace, require_tool
from netns import ADDRESS, two_hosts  # noqa: F401 (a fixture)

DEAD = 3  # --dead-peer in these tests, seconds
PORT = "9000"  # each pair of namespaces is private: any port is free there
MODES = ["fork", "threads", "poll", "alternate"]


def chat_across(hosts, measured_role, a_args=(), b_args=()):
    """forkchat on host a (measured) and its peer on host b, connected.
    Returns (a, b, how a names b)."""
    if measured_role == "listen":
        a = hosts.forkchat("a", "listen", PORT, "--bind", ADDRESS["a"], *a_args)
        a.wait_err(rf"listening on {ADDRESS['a']} port {PORT}\n")
        b = hosts.forkchat("b", "connect", ADDRESS["a"], PORT, *b_args, stdout="devnull")
        peer = a.wait_err(rf"connection from ({re.escape(ADDRESS['b'])} port \d+)\n")[1].decode()
    else:
        b = hosts.forkchat("b", "listen", PORT, "--bind", ADDRESS["b"], *b_args, stdout="devnull")
        b.wait_err(rf"listening on {ADDRESS['b']} port {PORT}\n")
        a = hosts.forkchat("a", "connect", ADDRESS["b"], PORT, *a_args)
        peer = f"{ADDRESS['b']} port {PORT}"
        a.wait_err(rf"connected to {re.escape(peer)}\n")
    b.wait_err(r"(connected to|connection from) ")
    return a, b, peer


def assert_vanished(fc, peer, pulled_at, low, high, what):
    """fc ended with exit 1 between `low` and `high` seconds after the cable
    was pulled, with one line saying that `peer` timed out."""
    fc.assert_exit(1, timeout=high + 10)
    took = fc.ended - pulled_at
    err = fc.err_text()
    assert low <= took <= high, f"{what}: noticed after {took:.1f} s, expected {low} to {high} s" + fc.describe()
    said = re.findall(rf"forkchat: (read from|write to) {re.escape(peer)}: Connection timed out\n", err)
    assert len(said) == 1, f"{what}: one line must say the peer timed out" + fc.describe()
    assert "closed the connection" not in err and "Broken pipe" not in err, what + fc.describe()


@pytest.mark.parametrize("mode", MODES)
def test_vanished_peer_is_noticed_idle_or_busy(two_hosts, mode):
    """Row 5: the peer's cable is pulled while the chat is idle, or while
    forkchat is sending; in both roles, at once on four pairs of hosts.
    Idle, keepalive probes go unanswered; busy, the data stays
    unacknowledged (TCP_USER_TIMEOUT). Before: idle, never noticed (still
    "connected" after 2674 s); busy, ~928 s and a false message."""
    scenarios = []
    for load in ("idle", "busy"):
        for role in ("listen", "connect"):
            hosts = two_hosts()
            first = ("--first", "send") if mode == "alternate" and role == "listen" else ()
            a, b, peer = chat_across(
                hosts, role, ("--dead-peer", str(DEAD), *mode_args(mode), *first), ("--dead-peer", str(DEAD))
            )
            scenarios.append((load, role, hosts, a, b, peer))
    sockets = scenarios[0][2].sockets("a")
    assert "timer:(keepalive," in sockets, f"no keepalive timer on the chat's socket:\n{sockets}"
    pulled_at = time.monotonic()
    for load, role, hosts, a, b, peer in scenarios:
        hosts.pull_cable("b")
        if load == "busy":
            a.feed(b"x" * (4 << 20), close=False)  # more than the socket holds: unacknowledged
    for load, role, hosts, a, b, peer in scenarios:
        what = f"--mode {mode}, {role}ing side, {load}"
        assert_vanished(a, peer, pulled_at, DEAD - 1.5, DEAD + 4, what)
        # The peer lost its cable: for it, forkchat vanished, and it says so too.
        b.assert_exit(1, timeout=DEAD + 10)
        assert "Connection timed out" in b.err_text(), f"{what}: the other side" + b.describe()


def test_kernel_limit_without_dead_peer_is_named_truly(two_hosts):
    """Row 5, the message: with --dead-peer 0 the kernel's own limit decides
    (net.ipv4.tcp_retries2, lowered to 3 on host a: about 7 s). In the fork
    and threads modes, two processes or threads share the socket, and the kernel tells the error
    to one call only: before, the other said "closed the connection" or
    "write ...: Broken pipe". Now one line says "Connection timed out"."""
    scenarios = []
    for mode in ("fork", "threads"):
        for role in ("listen", "connect"):
            hosts = two_hosts(sysctls={"a": {"net.ipv4.tcp_retries2": "3"}})
            a, b, peer = chat_across(hosts, role, ("--dead-peer", "0", *mode_args(mode)), ("--linger", "0"))
            scenarios.append((mode, role, hosts, a, b, peer))
    sockets = scenarios[0][2].sockets("a")
    assert "keepalive" not in sockets, f"--dead-peer 0 must leave keepalive off:\n{sockets}"
    pulled_at = time.monotonic()
    for mode, role, hosts, a, b, peer in scenarios:
        hosts.pull_cable("b")
        a.feed(b"x" * (4 << 20), close=False)
    for mode, role, hosts, a, b, peer in scenarios:
        assert_vanished(a, peer, pulled_at, 2, 15, f"--mode {mode}, {role}ing side, --dead-peer 0")
        b.signal(signal.SIGTERM)  # it has nothing to send: its kernel would wait for ever
        b.assert_signaled(signal.SIGTERM)


def test_connect_timeout(two_hosts):
    """Row 6: a connection try to an address that drops packets gives up
    after --connect-timeout, naming host and port; with --retry, tries go
    on until the retry time is over. Before: 134 s, no option."""
    hosts = two_hosts()
    hosts.pull_cable("b")  # its SYNs are dropped without a word
    started = time.monotonic()
    fc = hosts.forkchat("a", "connect", ADDRESS["b"], PORT, "--connect-timeout", "1", stdin="devnull")
    fc.assert_exit(1, timeout=10)
    took = fc.ended - started
    assert 0.9 <= took <= 3, f"--connect-timeout 1 gave up after {took:.1f} s" + fc.describe()
    assert fc.err_text() == f"forkchat: connect to {ADDRESS['b']} port {PORT}: Connection timed out (no answer in 1 s)\n"

    started = time.monotonic()
    fc = hosts.forkchat(
        "a", "connect", ADDRESS["b"], PORT, "--retry", "2", "--connect-timeout", "0.5", "--trace", stdin="devnull"
    )
    fc.assert_exit(1, timeout=10)
    took = fc.ended - started
    assert 1.9 <= took <= 4, f"--retry 2 gave up after {took:.1f} s" + fc.describe()
    tries = [e for e in parse_trace(fc.err_text()) if e.event == "connect" and "failed: " in e.details]
    assert len(tries) >= 3, f"--retry 2 with tries of 0.5 s made {len(tries)} tries" + fc.describe()
    notices = [line for line in fc.err_text().splitlines() if line.startswith("forkchat: ")]
    assert notices[0] == (
        f"forkchat: connect to {ADDRESS['b']} port {PORT}: Connection timed out (no answer in 0.5 s); retrying for 2 s"
    ), fc.describe()
    assert re.fullmatch(
        rf"forkchat: connect to {re.escape(ADDRESS['b'])} port {PORT}: Connection timed out \(no answer in [\d.]+ s\)",
        notices[-1],
    ), fc.describe()


# --- over loopback: no second host needed ------------------------------------


def test_default_dead_peer_arms_keepalive():
    """Without --dead-peer, keepalive is on (the default, 60 s, probes
    after 30 s of silence): `ss -o` shows the timer on both sides."""
    ss = require_tool("ss")
    port = free_port()
    listener = Forkchat("listen", str(port), "-4", stdout="devnull")
    listener.wait_err(r"listening on 0\.0\.0\.0")
    client = Forkchat("connect", "127.0.0.1", str(port), stdout="devnull")
    client.wait_err("connected to")
    listener.wait_err("connection from")
    out = os.popen(f"{ss} -tno state established '( sport = :{port} or dport = :{port} )'").read()
    timers = re.findall(r"timer:\(keepalive,(\d+)sec,0\)", out)
    assert len(timers) == 2 and all(28 <= int(t) <= 30 for t in timers), f"keepalive timers:\n{out}"
    client.close_stdin()
    listener.close_stdin()
    client.assert_exit(0)
    listener.assert_exit(0)


def test_a_stopped_peer_is_not_dead():
    """A peer whose processes are stopped (Ctrl-Z) still answers keepalive
    probes from its kernel: after 3 x --dead-peer the chat goes on."""
    port = free_port()
    listener = Forkchat("listen", str(port), "-4", "--dead-peer", "1")
    listener.wait_err(r"listening on 0\.0\.0\.0")
    client = Forkchat("connect", "127.0.0.1", str(port), "--dead-peer", "1")
    client.wait_err("connected to")
    listener.wait_err("connection from")
    stopped = [listener.pid] + [p.pid for p in children_of(listener.pid)]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    time.sleep(3)
    client.assert_running("(its peer is stopped, not gone)")
    for pid in stopped:
        os.kill(pid, signal.SIGCONT)
    client.send(b"still there?\n")
    listener.wait_out_bytes(b"still there?\n")
    listener.send(b"yes\n")
    client.wait_out_bytes(b"yes\n")
    client.close_stdin()
    listener.close_stdin()
    client.assert_exit(0)
    listener.assert_exit(0)
