"""The teardown contract, row by row, in both roles (forkchat listening or
connecting, against a raw Python peer), with stdin a pipe or a terminal, and
in the three modes that share the contract: fork (the default, without
--mode), threads and poll. The rows that need two processes (the sending
child killed, the parent SIGKILLed) apply to fork only.
Every test also gets the automatic "no process left behind" check."""

import os
import re
import signal
import time

import pytest

from harness import (
    CONTRACT_MODES,
    expect_orphans,
    live_in_sessions,
    signaled,
    start_chat,
    wait_sessions_empty,
)

ROLES = ["listen", "connect"]
STDINS = ["pipe", "pty"]
MODES = CONTRACT_MODES  # default (fork without --mode), threads, poll


def chat_in(mode, role, stdin, *args, **kwargs):
    return start_chat(role, stdin, *args, mode=mode, **kwargs)


def peer_line(chat, text: bytes) -> bytes:
    """How a line from the peer shows up on forkchat's stdout."""
    return b"< " + text if chat.fc.stdout_kind == "pty" else text


def establish(chat):
    """Proves the chat is live both ways before the ending under test, and
    that forkchat runs as its mode says (fork: a child; threads: a second
    thread; poll: one thread); returns the child's pid in fork mode."""
    shape = chat.fc.wait_shape(chat.mode)
    chat.fc.send(b"ping\n")
    chat.peer.expect(b"ping\n", what="(forkchat -> peer)")
    chat.peer.send(b"pong\n")
    chat.fc.wait_out_bytes(peer_line(chat, b"pong\n"))
    return shape


def closed_notice(chat) -> str:
    return f"forkchat: {chat.peer_name} closed the connection\n"


# --- local input ends --------------------------------------------------------


@pytest.mark.parametrize("stdin", STDINS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_input_ends(mode, role, stdin):
    chat = chat_in(mode, role, stdin)
    fc, peer = chat.fc, chat.peer
    establish(chat)
    fc.send(b"last words\n")
    closed_at = time.monotonic()  # the linger cannot start before this
    fc.close_stdin()  # Ctrl-D at the start of a line, or the pipe closed
    peer.expect(b"last words\n")
    peer.expect_eof(what="(forkchat's input ended: shutdown(SHUT_WR))")
    # The parent goes on printing what the peer sends.
    peer.send(b"late reply\n")
    fc.wait_out_bytes(peer_line(chat, b"late reply\n"))
    if stdin == "pty":
        # Bounded by the default linger of 2 s; the peer never closes. The
        # bound is the exit itself (within the wait); load can only make
        # the linger look longer, never shorter than its 2 s.
        fc.assert_exit(0, timeout=15)
        waited = fc.ended - closed_at
        assert waited >= 1.95, f"linger should be 2 s, was {waited:.2f} s" + fc.describe()
        assert f"forkchat: {chat.peer_name} did not close within 2 s; closing\n" in fc.err_text(), fc.describe()
        assert chat.peer.closed_by_other_side() == "eof"
    else:
        # Unbounded with a pipe: still there well past 2 s. The positive
        # sign: a line sent after 2.5 s is still read and printed, and the
        # ending is the peer's close, not a linger.
        time.sleep(max(0.0, closed_at + 2.5 - time.monotonic()))
        peer.send(b"later still\n")
        fc.wait_out_bytes(b"later still\n")
        fc.assert_running("(pipe stdin: no linger limit unless --linger)")
        peer.close()
        fc.assert_exit(0)
        assert fc.out_bytes() == b"pong\nlate reply\nlater still\n", fc.describe()
        assert closed_notice(chat) in fc.err_text(), fc.describe()
        assert "did not close within" not in fc.err_text(), fc.describe()


@pytest.mark.parametrize("stdin", STDINS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_linger_option_bounds_the_wait(mode, role, stdin):
    chat = chat_in(mode, role, stdin, "--linger", "0.5")
    establish(chat)
    closed_at = time.monotonic()  # the linger cannot start before this
    chat.fc.close_stdin()
    chat.peer.expect_eof()
    # Bounded: the exit comes (within the wait), never before its 0.5 s.
    chat.fc.assert_exit(0, timeout=15)
    waited = chat.fc.ended - closed_at
    assert waited >= 0.45, f"--linger 0.5 waited {waited:.2f} s" + chat.fc.describe()
    assert f"forkchat: {chat.peer_name} did not close within 0.5 s; closing\n" in chat.fc.err_text(), chat.fc.describe()
    assert chat.peer.closed_by_other_side() == "eof"


# --- the quit word -----------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_quit_word_on_terminal(mode, role):
    chat = chat_in(mode, role, "pty")
    fc, peer = chat.fc, chat.peer
    establish(chat)
    # Lines that only look like the word are ordinary data.
    fc.type(b"exit now\n")
    fc.type(b" exit\n")
    fc.type(b"exits\n")
    peer.expect(b"exit now\n exit\nexits\n")
    fc.type(b"still here\n")  # a marker: nothing (no FIN) came before it
    peer.expect(b"still here\n", what="(no quit yet)")
    fc.type(b"exit\n")
    peer.expect(b"exit\n", what="(the quit line itself is sent)")
    peer.expect_eof(what="(after the quit word)")
    fc.type(b"typed after quitting\n")
    peer.send(b"see you\n")
    fc.wait_out_bytes(b"< see you\n")
    peer.close()
    fc.assert_exit(0, timeout=5)
    assert closed_notice(chat) in fc.err_text(), fc.describe()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_custom_quit_word_and_disabled_quit_word(mode, role):
    chat = chat_in(mode, role, "pty", "--quit", "bye")
    chat.fc.type(b"exit\n")
    chat.peer.expect(b"exit\n")
    chat.fc.type(b"bye\n")  # comes after 'exit', no FIN before it: 'exit' was data
    chat.peer.expect(b"bye\n")
    chat.peer.expect_eof(what="(after --quit bye)")
    chat.peer.close()
    chat.fc.assert_exit(0, timeout=5)

    chat = chat_in(mode, role, "pty", "--quit=")
    chat.fc.type(b"exit\n")
    chat.peer.expect(b"exit\n")
    chat.fc.type(b"marker\n")  # nothing (no FIN) came before it
    chat.peer.expect(b"marker\n", what="(--quit '' disables the quit word)")
    chat.fc.close_stdin()
    chat.peer.expect_eof()
    chat.peer.close()
    chat.fc.assert_exit(0, timeout=5)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_quit_word_on_pipe_is_data(mode, role):
    chat = chat_in(mode, role, "pipe")
    fc, peer = chat.fc, chat.peer
    fc.send(b"exit\n")
    peer.expect(b"exit\n")
    fc.send(b"more\n")  # comes after 'exit', no FIN before it
    peer.expect(b"more\n", what="('exit' on a pipe is not a quit)")
    fc.close_stdin()
    peer.expect_eof()
    peer.close()
    fc.assert_exit(0)


# --- the peer closes ---------------------------------------------------------


@pytest.mark.parametrize("stdin", STDINS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_peer_closes(mode, role, stdin):
    chat = chat_in(mode, role, stdin)
    fc, peer = chat.fc, chat.peer
    establish(chat)
    peer.send(b"goodbye\n")
    peer.shutdown_write()  # FIN; the peer can still receive
    fc.wait_err(re.escape(closed_notice(chat)))
    fc.wait_out_bytes(peer_line(chat, b"goodbye\n"))
    if stdin == "pty":
        # Nobody to talk to: the child is killed and reaped, exit without
        # any more input and without a linger.
        fc.assert_exit(0, timeout=10)
        assert "did not close within" not in fc.err_text(), fc.describe()
        assert peer.closed_by_other_side() == "eof"
    else:
        # The child goes on until its input ends: a half-closed peer still
        # receives what is sent after its FIN.
        fc.send(b"after your FIN\n")
        peer.expect(b"after your FIN\n", what="(data sent after the peer's FIN)")
        fc.assert_running("(pipe stdin: the child sends until its input ends)")
        fc.close_stdin()
        peer.expect_eof()
        fc.assert_exit(0)
        assert fc.out_bytes() == b"pong\ngoodbye\n", fc.describe()


# --- connection reset / write failure ----------------------------------------


@pytest.mark.parametrize("stdin", STDINS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_connection_reset_by_peer(mode, role, stdin):
    chat = chat_in(mode, role, stdin)
    establish(chat)
    chat.peer.reset()
    chat.fc.assert_exit(1, timeout=5)
    err = chat.fc.err_text()
    assert f"forkchat: read from {chat.peer_name}: Connection reset by peer\n" in err, chat.fc.describe()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_write_to_peer_fails(mode, role):
    chat = chat_in(mode, role, "pipe")
    fc, peer = chat.fc, chat.peer
    establish(chat)
    peer.close()  # full close: what forkchat sends next is answered with RST
    fc.wait_err(re.escape(closed_notice(chat)))
    deadline = time.monotonic() + 5
    while fc.popen.poll() is None and time.monotonic() < deadline:
        try:
            fc.send(b"anyone there?\n")
        except BrokenPipeError:
            break
        time.sleep(0.05)
    fc.assert_exit(1, timeout=5)
    err = fc.err_text()
    assert re.search(
        rf"forkchat: write to {re.escape(chat.peer_name)}: (Broken pipe|Connection reset by peer)\n", err
    ), fc.describe()


@pytest.mark.parametrize("stdin", STDINS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_write_to_stdout_fails(mode, role, stdin):
    chat = chat_in(mode, role, stdin, stdout="closed")
    chat.fc.send(b"ping\n")
    chat.peer.expect(b"ping\n")
    chat.peer.send(b"nobody reads this\n")
    chat.fc.assert_exit(1, timeout=5)
    assert "forkchat: write to standard output: Broken pipe\n" in chat.fc.err_text(), chat.fc.describe()
    assert chat.peer.closed_by_other_side() in ("eof", "reset")


# --- signals -----------------------------------------------------------------

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("stdin", STDINS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_signal_to_parent(mode, role, stdin, sig):
    chat = chat_in(mode, role, stdin)
    sender = establish(chat)  # the child (fork) or the sender thread (threads)
    chat.fc.signal(sig)
    chat.fc.assert_signaled(sig, timeout=5)
    left = wait_sessions_empty([chat.fc.pid], timeout=10.0)
    assert not left, f"sending process {sender} survived: {left}" + chat.fc.describe()
    assert chat.peer.closed_by_other_side() == "eof"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_ctrl_c_on_terminal(mode, role):
    chat = chat_in(mode, role, "pty")
    establish(chat)
    chat.fc.send(b"half a li")
    chat.fc.send(b"\x03")  # SIGINT to the whole foreground process group
    chat.fc.assert_signaled(signal.SIGINT, timeout=5)
    assert chat.peer.closed_by_other_side() == "eof"
    assert b"half a li" not in chat.peer.buf, "an unfinished line must not be sent"


# The two rows below need two processes: in the threads and poll modes a
# session is one process, which SIGKILL simply ends, so they run for fork
# only (the default, and --mode fork).
TWO_PROCESS_MODES = ["default", "fork"]


@pytest.mark.parametrize("stdin", STDINS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", TWO_PROCESS_MODES)
def test_parent_killed(mode, role, stdin):
    chat = chat_in(mode, role, stdin)
    child = establish(chat)
    expect_orphans()  # nobody is left to reap the child but init (here: the test)
    chat.fc.signal(signal.SIGKILL)
    rc = chat.fc.wait(5)
    assert signaled(rc, signal.SIGKILL), chat.fc.describe()
    left = wait_sessions_empty([chat.fc.pid], timeout=10.0)
    assert not left, f"the sending process {child} outlived its SIGKILLed parent: {left}" + chat.fc.describe()
    assert chat.peer.closed_by_other_side() == "eof"


@pytest.mark.parametrize("stdin", STDINS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", TWO_PROCESS_MODES)
def test_child_killed(mode, role, stdin):
    chat = chat_in(mode, role, stdin)
    fc, peer = chat.fc, chat.peer
    child = establish(chat)
    os.kill(child, signal.SIGKILL)
    fc.wait_err(rf"forkchat: sending process {child} killed by signal 9 \(Killed\)\n")
    peer.expect_eof(what="(the parent shuts down the sending side when the child dies)")
    assert live_in_sessions([fc.pid]) and fc.popen.poll() is None, "the parent keeps running" + fc.describe()
    peer.send(b"still here\n")
    fc.wait_out_bytes(peer_line(chat, b"still here\n"))
    peer.send(b"and still\n")  # a second line: it still reads, it has not exited since
    fc.wait_out_bytes(peer_line(chat, b"and still\n"))
    fc.assert_running("(it prints what the peer sends until the peer closes)")
    peer.close()
    fc.assert_exit(1, timeout=5)
    assert closed_notice(chat) in fc.err_text(), fc.describe()
