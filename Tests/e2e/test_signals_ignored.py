"""A signal ignored when forkchat starts stays ignored (issue 19.2), in
every mode: nohup's SIGHUP, and the SIGINT of a job that a non-interactive
shell starts with `&` (the shell sets SIG_IGN for it, POSIX 2.11). The
convention of nc, socat and every daemon; a handler installed anyway made
`nohup forkchat room` close at the first hang-up.

Each test sends the ignored signal, then shows that the process is still
at work by a positive sign (a line relayed after the signal, a new
connection served), and that the signal is still in SigIgn
(/proc/PID/status) for forkchat and for the processes it forked."""

import os
import signal

import pytest

from harness import (
    FORKCHAT,
    LISTEN_RE,
    Forkchat,
    Peer,
    Proc,
    children_of,
    free_port,
    wait_until,
)
from roomclient import Client, stop_room


def ignored(pid: int) -> set[int]:
    """The signals `pid` ignores (SigIgn in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        mask = int(next(l for l in f if l.startswith("SigIgn:")).split()[1], 16)
    return {n for n in range(1, 65) if mask & (1 << (n - 1))}


def caught(pid: int) -> set[int]:
    with open(f"/proc/{pid}/status") as f:
        mask = int(next(l for l in f if l.startswith("SigCgt:")).split()[1], 16)
    return {n for n in range(1, 65) if mask & (1 << (n - 1))}


def nohup(*args, stdin="devnull") -> Forkchat:
    return Forkchat(*args, prefix=("nohup",), stdin=stdin)


def background_job(*args):
    """`sh -c 'forkchat ARGS & wait $!'`: the shell runs forkchat as an
    asynchronous job, SIGINT and SIGQUIT ignored, stdin from /dev/null.
    Returns (the shell, forkchat's pid)."""
    sh = Proc(["sh", "-c", '"$@" & wait $!', "sh", FORKCHAT, *args], stdin="devnull", name="sh")
    pid = wait_until(lambda: next((c.pid for c in children_of(sh.pid) if c.comm == "forkchat"), None),
                     what="forkchat started by sh")
    return sh, pid


def test_nohup_chat_listener_keeps_chatting_after_sighup():
    port = free_port()
    fc = nohup("listen", str(port), stdin="pipe")
    fc.wait_err(LISTEN_RE % port)
    peer = Peer.connect("127.0.0.1", port)
    fc.wait_err(r"connection from")
    child = fc.child_pid()
    assert signal.SIGHUP in ignored(fc.pid) and signal.SIGHUP not in caught(fc.pid), fc.describe()
    assert signal.SIGHUP in ignored(child), fc.describe()
    assert signal.SIGINT in caught(fc.pid)  # not ignored at start: handled as before
    fc.signal(signal.SIGHUP)
    fc.signal(signal.SIGHUP)
    peer.send(b"still there?\n")
    fc.wait_out_bytes(b"still there?\n")
    fc.send(b"yes\n")
    peer.expect(b"yes\n")
    fc.close_stdin()
    peer.close()
    fc.assert_exit(0)


def test_background_job_chat_ignores_sigint_and_sigquit():
    port = free_port()
    sh, pid = background_job("listen", str(port))
    sh.wait_err(LISTEN_RE % port)
    assert {signal.SIGINT, signal.SIGQUIT} <= ignored(pid), sh.describe()
    peer = Peer.connect("127.0.0.1", port)
    sh.wait_err(r"connection from")
    # stdin is /dev/null: our side has ended; the peer's data is still shown.
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGQUIT)
    peer.send(b"after ^C\n")
    sh.wait_out_bytes(b"after ^C\n")
    peer.close()
    sh.assert_exit(0)


def test_nohup_listen_keep_serves_the_next_client_after_sighup():
    port = free_port()
    fc = nohup("listen", str(port), "--keep")
    fc.wait_err(LISTEN_RE % port)
    first = Peer.connect("127.0.0.1", port)
    first.send(b"one\n")
    fc.wait_out_bytes(b"one\n")
    fc.signal(signal.SIGHUP)
    first.close()
    fc.wait_err(r"closed the connection")
    second = Peer.connect("127.0.0.1", port)
    second.send(b"two\n")
    fc.wait_out_bytes(b"two\n")
    second.close()
    fc.signal(signal.SIGTERM)
    fc.assert_signaled(signal.SIGTERM)


@pytest.mark.parametrize("start", ["nohup", "background"])
def test_echo_keep_still_echoes_after_the_ignored_signal(start):
    port = free_port()
    if start == "nohup":
        proc = nohup("listen", str(port), "--echo", "--keep")
        pid, sig = proc.pid, signal.SIGHUP
    else:
        proc, pid = background_job("listen", str(port), "--echo", "--keep")
        sig = signal.SIGINT
    proc.wait_err(LISTEN_RE % port)
    first = Peer.connect("127.0.0.1", port)
    first.send(b"ping\n")
    first.expect(b"ping\n")
    echoer = wait_until(lambda: next((c.pid for c in children_of(pid)), None), what="the echo child")
    assert sig in ignored(pid) and sig in ignored(echoer)
    os.kill(pid, sig)
    os.kill(echoer, sig)
    first.send(b"pong\n")
    first.expect(b"pong\n")
    second = Peer.connect("127.0.0.1", port)
    second.send(b"again\n")
    second.expect(b"again\n")
    first.close()
    second.close()
    os.kill(pid, signal.SIGTERM)
    proc.assert_signaled(signal.SIGTERM) if start == "nohup" else proc.assert_exit(128 + signal.SIGTERM)


@pytest.mark.parametrize("start", ["nohup", "background"])
def test_room_stays_open_after_the_ignored_signal(start):
    port = free_port()
    args = ("room", str(port), "--bind", "127.0.0.1")
    if start == "nohup":
        room = nohup(*args)
        pid, sig = room.pid, signal.SIGHUP
    else:
        room, pid = background_job(*args)
        sig = signal.SIGINT
    room.wait_err(rf"forkchat: room open on 127\.0\.0\.1 port {port}")
    a = Client(port)
    for p in [pid] + [c.pid for c in children_of(pid)]:
        assert sig in ignored(p), (p, room.describe())
    os.kill(pid, sig)
    b = Client(port)
    a.expect_line(rf"* {b.name} joined".encode())
    b.say(b"the room is open")
    a.expect_line(rf"{b.name}: the room is open".encode())
    assert "closing the room" not in room.err_text()
    if start == "nohup":
        stop_room(room)
    else:
        os.kill(pid, signal.SIGTERM)
        room.assert_exit(128 + signal.SIGTERM)
