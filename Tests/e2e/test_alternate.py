"""--mode alternate: one thread, turn-taking. Read a line from stdin, send
it, wait for the peer's line (or whatever one read returns), print it,
repeat. The connecting side starts by sending, the listening side by
waiting; --first overrides. It is not full duplex: what is typed out of turn
waits for the turn, and so does what the peer sends."""

import os
import re
import signal
import time

import pytest

from harness import forkchat_pair, start_chat, wait_sessions_empty

ALT = ("--mode", "alternate")


def alt_chat(role, stdin="pipe", *args, **kwargs):
    chat = start_chat(role, stdin, *args, mode="alternate", **kwargs)
    assert chat.fc.wait_shape("alternate") is None  # one process, one thread
    return chat


def closed_notice(chat) -> str:
    return f"forkchat: {chat.peer_name} closed the connection\n"


# --- turn order --------------------------------------------------------------

TURNS = [
    # (role, extra args, whether forkchat sends first)
    ("connect", [], True),
    ("listen", [], False),
    ("connect", ["--first", "receive"], False),
    ("listen", ["--first", "send"], True),
    ("connect", ["--first=send"], True),
    ("listen", ["--first=receive"], False),
]


@pytest.mark.parametrize(
    "role,args,sends_first", TURNS, ids=[f"{r}-" + (f"first-{a[-1].split('=')[-1]}" if a else "default") for r, a, _ in TURNS]
)
def test_turn_order(role, args, sends_first):
    chat = alt_chat(role, "pipe", *args)
    fc, peer = chat.fc, chat.peer
    fc.send(b"mine 1\n")  # typed at once, before anything arrived
    if sends_first:
        peer.expect(b"mine 1\n", what="(this side sends first)")
        fc.send(b"mine 2\n")
        peer.expect_nothing_from(fc, "(the next line waits until the peer's line has arrived)")
        peer.send(b"yours 1\n")
        fc.wait_out_bytes(b"yours 1\n")
        peer.expect(b"mine 2\n", what="(sent once the peer's line was printed)")
    else:
        peer.expect_nothing_from(fc, "(this side waits for the peer's line before sending its own)")
        peer.send(b"yours 1\n")
        fc.wait_out_bytes(b"yours 1\n")
        peer.expect(b"mine 1\n", what="(sent once the peer's line was printed)")
    # Now forkchat waits for the peer's next line: the peer's FIN ends its
    # turns; from a pipe, the rest of the input is still sent, until it ends.
    peer.shutdown_write()
    fc.send(b"rest\n")
    peer.expect(b"rest\n", what="(the peer has no more turns: the rest of a pipe's input follows)")
    fc.close_stdin()
    fc.assert_exit(0, timeout=5)
    peer.expect_eof()
    assert fc.out_bytes() == b"yours 1\n", fc.describe()
    assert closed_notice(chat) in fc.err_text(), fc.describe()


def test_two_forkchats_take_turns():
    """Default turns between two forkchats: the client speaks first."""
    listener, client = forkchat_pair(ALT, ALT)
    listener.send(b"l1\nl2\n")
    client.send(b"c1\nc2\n")
    listener.wait_out_bytes(b"c1\nc2\n")
    client.wait_out_bytes(b"l1\nl2\n")
    client.close_stdin()  # client: EOF on its next send turn, FIN; the listener sees it
    listener.close_stdin()  # and, its input from a pipe sent, ends too
    listener.assert_exit(0)
    client.assert_exit(0)
    assert listener.out_bytes() == b"c1\nc2\n", listener.describe()
    assert client.out_bytes() == b"l1\nl2\n", client.describe()


def test_not_full_duplex_lines_are_exchanged_one_by_one():
    """Two lines queued on each side go across one at a time, in turn order;
    a line of the peer that has already arrived is printed only after this
    side has sent its next line (fork mode would print it at once)."""
    chat = alt_chat("connect", "pipe")
    fc, peer = chat.fc, chat.peer
    fc.send(b"c1\nc2\n")  # both queued on stdin
    peer.expect(b"c1\n")
    peer.expect_nothing_from(fc, "(c2 is held back until the peer's line arrives)")
    peer.send(b"p1\np2\n")  # both at once, in one segment
    fc.wait_out_bytes(b"p1\n")
    peer.expect(b"c2\n", what="(after p1 was printed)")
    fc.wait_out_bytes(b"p1\np2\n")  # c2 sent: p2 (already received) is printed

    peer.send(b"p3\np4\n")
    peer.expect_nothing_from(fc, "(nothing queued on stdin: forkchat waits for it, in its send turn)")
    fc.wait_settled()  # asleep, everything it printed collected
    assert fc.out_bytes() == b"p1\np2\n", "p3 arrived but must wait for this side's next line" + fc.describe()
    fc.send(b"c3\n")
    peer.expect(b"c3\n")
    fc.wait_out_bytes(b"p1\np2\np3\n")
    fc.wait_settled()
    assert fc.out_bytes() == b"p1\np2\np3\n", "p4 must wait for the next send turn" + fc.describe()
    fc.send(b"c4\n")
    peer.expect(b"c4\n")
    fc.wait_out_bytes(b"p1\np2\np3\np4\n")
    # Its send turn again: the end of input ends it (FIN), then the peer's.
    fc.close_stdin()
    peer.expect_eof()
    peer.shutdown_write()
    fc.assert_exit(0, timeout=5)
    assert fc.out_bytes() == b"p1\np2\np3\np4\n", fc.describe()


# --- both sides start the same way -------------------------------------------


def test_both_first_receive_deadlock():
    """Both wait for the other's line: nothing is ever exchanged, both stay
    blocked until a signal ends them."""
    first = ("--first", "receive", "--trace")
    listener, client = forkchat_pair(ALT + first, ALT + first)
    listener.send(b"from listener\n")
    client.send(b"from client\n")
    # The positive sign of the deadlock: both in their receive turn, both
    # asleep with their line still unread in their stdin, and all they
    # printed collected: nothing.
    for fc in (listener, client):
        fc.wait_err(r"alternate turn receive: waiting for the peer's line\n")
    for fc in (listener, client):
        fc.wait_settled()
    for fc in (listener, client):
        fc.assert_running("(deadlocked: both wait for the other's line)")
        assert fc.stdin_unread() == len(b"from client\n" if fc is client else b"from listener\n"), fc.describe()
        assert fc.out_bytes() == b"", "deadlock expected: nothing may arrive" + fc.describe()
    for fc in (listener, client):
        turns = [e.details for e in fc.trace() if e.event == "turn"]
        assert turns == ["receive: waiting for the peer's line"], f"both wait on the socket: {turns}" + fc.describe()
    # The first to die closes its socket, and the other would read the EOF
    # and exit 0: stop both first (a stopped process reads nothing, and the
    # default action of SIGTERM still ends it).
    for fc in (listener, client):
        fc.signal(signal.SIGSTOP)
    for fc in (listener, client):
        fc.signal(signal.SIGTERM)
    for fc in (listener, client):
        fc.signal(signal.SIGCONT)
    listener.assert_signaled(signal.SIGTERM, timeout=5)
    client.assert_signaled(signal.SIGTERM, timeout=5)
    assert listener.popen.returncode == -15 and client.popen.returncode == -15
    assert listener.out_bytes() == b"" and client.out_bytes() == b""


def test_both_first_send_works():
    first = ("--first", "send")
    listener, client = forkchat_pair(ALT + first, ALT + first)
    listener.send(b"from listener\n")
    client.send(b"from client\n")
    client.wait_out_bytes(b"from listener\n")
    listener.wait_out_bytes(b"from client\n")
    listener.send(b"second from listener\n")
    client.send(b"second from client\n")
    client.wait_out_bytes(b"from listener\nsecond from listener\n")
    listener.wait_out_bytes(b"from client\nsecond from client\n")
    listener.close_stdin()
    client.close_stdin()
    listener.assert_exit(0)
    client.assert_exit(0)
    assert listener.out_bytes() == b"from client\nsecond from client\n", listener.describe()
    assert client.out_bytes() == b"from listener\nsecond from listener\n", client.describe()


# --- what a turn receives ----------------------------------------------------


@pytest.mark.parametrize("stdin", ["pipe", "pty"])
def test_message_without_newline_is_one_message(stdin):
    """A raw peer (the course's scripts) sends a message without a newline:
    what one read returns is printed as one message, and the turn passes."""
    chat = alt_chat("listen", stdin)
    fc, peer = chat.fc, chat.peer
    shown = (lambda text: b"< " + text + b"\n") if stdin == "pty" else (lambda text: text)
    fc.send(b"reply one\n")
    if stdin == "pty":
        # The terminal echoes the typed line asynchronously (the line
        # discipline runs in a kernel worker): wait for it, so that it
        # cannot land between the peer's two messages.
        fc.wait_out_bytes(b"reply one\n")
    peer.send(b"no newline")
    fc.wait_out_bytes(shown(b"no newline"))
    peer.expect(b"reply one\n", what="(the message without newline ended the peer's turn)")
    peer.send(b"again without")
    fc.wait_out_bytes(shown(b"no newline") + shown(b"again without"))
    fc.send(b"reply two\n")
    peer.expect(b"reply two\n")
    peer.shutdown_write()
    fc.close_stdin()  # a pipe is sent until it ends (a terminal stops at the peer's end)
    fc.assert_exit(0, timeout=5)
    if stdin == "pipe":
        assert fc.out_bytes() == b"no newlineagain without", fc.describe()
    else:  # the terminal also shows what was typed
        assert b"\n< no newline\n< again without\nreply two\n" in fc.out_bytes(), fc.describe()


# --- endings -----------------------------------------------------------------


def test_input_end_sends_fin_then_only_receives():
    chat = alt_chat("connect", "pipe")
    fc, peer = chat.fc, chat.peer
    fc.send(b"only line\n")
    fc.close_stdin()
    peer.expect(b"only line\n")
    peer.expect_nothing_from(fc, "(the end of input is only read in forkchat's next send turn)")
    peer.send(b"r1\n")
    fc.wait_out_bytes(b"r1\n")
    peer.expect_eof(what="(input ended: shutdown(SHUT_WR))")
    # From now on forkchat only receives, any number of messages in a row.
    peer.send(b"r2\n")
    fc.wait_out_bytes(b"r1\nr2\n")
    peer.send(b"r3\n")
    fc.wait_out_bytes(b"r1\nr2\nr3\n")
    fc.wait_asleep()  # waiting again, and still there
    fc.assert_running("(pipe stdin: it waits for the peer's end without a limit)")
    peer.close()
    fc.assert_exit(0)
    assert fc.out_bytes() == b"r1\nr2\nr3\n", fc.describe()
    assert closed_notice(chat) in fc.err_text(), fc.describe()


def test_input_end_on_terminal_lingers_two_seconds():
    chat = alt_chat("connect", "pty")
    fc, peer = chat.fc, chat.peer
    fc.type(b"hello\n")
    peer.expect(b"hello\n")
    peer.send(b"hi\n")
    fc.wait_out_bytes(b"< hi\n")
    closed_at = time.monotonic()  # the linger cannot start before this
    fc.close_stdin()  # Ctrl-D
    peer.expect_eof()
    peer.send(b"late\n")
    fc.wait_out_bytes(b"< late\n")
    fc.assert_exit(0, timeout=15)  # bounded: the exit comes, never before 2 s
    waited = fc.ended - closed_at
    assert waited >= 1.95, f"linger should be 2 s, was {waited:.2f} s" + fc.describe()
    assert f"forkchat: {chat.peer_name} did not close within 2 s; closing\n" in fc.err_text(), fc.describe()
    assert peer.closed_by_other_side() == "eof"


def test_linger_option():
    chat = alt_chat("connect", "pipe", "--linger", "0.5")
    closed_at = time.monotonic()
    chat.fc.close_stdin()
    chat.peer.expect_eof()
    chat.fc.assert_exit(0, timeout=15)  # bounded: the exit comes, never before 0.5 s
    waited = chat.fc.ended - closed_at
    assert waited >= 0.45, f"--linger 0.5 waited {waited:.2f} s" + chat.fc.describe()
    assert f"forkchat: {chat.peer_name} did not close within 0.5 s; closing\n" in chat.fc.err_text()


@pytest.mark.parametrize("stdin", ["pipe", "pty"])
def test_peer_eof_while_receiving_ends_with_exit_0(stdin):
    chat = alt_chat("listen", stdin)  # waits for the peer's line
    fc, peer = chat.fc, chat.peer
    peer.send(b"one\n")
    fc.wait_out(rb"one\n")
    fc.send(b"answer\n")
    peer.expect(b"answer\n")
    peer.shutdown_write()  # while forkchat waits for the peer's next line
    fc.close_stdin()  # a pipe is sent until it ends (a terminal stops at the peer's end)
    fc.assert_exit(0, timeout=5)
    peer.expect_eof(what="(forkchat closes once the peer has)")
    assert closed_notice(chat) in fc.err_text(), fc.describe()


def test_peer_eof_during_send_turn_from_a_pipe_sends_the_rest():
    """The send turn watches the socket too: the peer's FIN is seen while
    forkchat waits for stdin. From a pipe the peer has no more turns but may
    still read (it may only have half-closed): every line that follows is
    sent, without waiting for turns, until the input ends."""
    chat = alt_chat("connect", "pipe")  # starts by waiting for stdin
    fc, peer = chat.fc, chat.peer
    peer.shutdown_write()
    fc.wait_err(re.escape(closed_notice(chat)))
    fc.assert_running("(a pipe's input is still sent)")
    fc.send(b"anyone?\n")
    peer.expect(b"anyone?\n")
    fc.send(b"still here\n")
    peer.expect(b"still here\n", what="(no turn to wait for: the peer has ended)")
    fc.close_stdin()
    peer.expect_eof()
    fc.assert_exit(0, timeout=5)


def test_peer_eof_during_send_turn_ends_a_terminal_chat():
    """At a terminal, the send turn watches the socket too: the peer's FIN
    (here after its quit line, as the course's scripts do) ends the chat at
    once, so that a person is not left typing to nobody."""
    chat = alt_chat("listen", "pty")  # starts by waiting for the peer
    fc, peer = chat.fc, chat.peer
    peer.send(b"exit\n")
    fc.wait_out_bytes(b"< exit\n")
    peer.shutdown_write()  # now it is forkchat's turn to send
    fc.assert_exit(0, timeout=5)
    assert closed_notice(chat) in fc.err_text(), fc.describe()
    assert peer.closed_by_other_side() == "eof"


def test_out_of_turn_bytes_wait_for_the_receive_turn_on_terminal():
    """A peer that speaks during our send turn is not taken for one that
    has gone: its line stays queued and is printed in our receive turn."""
    chat = alt_chat("connect", "pty")  # starts in its send turn
    fc, peer = chat.fc, chat.peer
    peer.send(b"early\n")
    fc.wait_settled()  # it has seen the line (or does not watch the socket): asleep again
    fc.assert_running("(out-of-turn data is not an end of file)")
    assert b"early" not in fc.out_bytes(), fc.describe()
    fc.type(b"my line\n")
    peer.expect(b"my line\n")
    fc.wait_out_bytes(b"< early\n")
    peer.close()
    fc.assert_exit(0, timeout=5)


@pytest.mark.parametrize("role", ["listen", "connect"])
def test_quit_word_on_terminal(role):
    chat = alt_chat(role, "pty")
    fc, peer = chat.fc, chat.peer
    if role == "listen":
        peer.send(b"hello\n")
        fc.wait_out_bytes(b"< hello\n")
    fc.type(b"exit now\n")  # only looks like the word: data
    peer.expect(b"exit now\n")
    peer.send(b"go on\n")
    fc.wait_out_bytes(b"< go on\n")
    fc.type(b"exit\n")
    peer.expect(b"exit\n", what="(the quit line itself is sent)")
    peer.expect_eof(what="(after the quit word)")
    peer.send(b"see you\n")
    fc.wait_out_bytes(b"< see you\n")
    peer.close()
    fc.assert_exit(0, timeout=5)
    assert closed_notice(chat) in fc.err_text(), fc.describe()


def test_quit_word_on_pipe_is_data():
    chat = alt_chat("connect", "pipe")
    chat.fc.send(b"exit\n")
    chat.peer.expect(b"exit\n")
    chat.peer.send(b"ok\n")
    chat.fc.wait_out_bytes(b"ok\n")
    chat.fc.send(b"still here\n")
    chat.peer.expect(b"still here\n", what="('exit' on a pipe is a line like any other)")
    chat.peer.shutdown_write()
    chat.fc.close_stdin()
    chat.fc.assert_exit(0, timeout=5)


SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("waiting", ["stdin", "socket"])
def test_signals_take_their_default_action(waiting, sig):
    # The connecting side starts waiting for stdin, the listening side for the socket.
    chat = alt_chat("connect" if waiting == "stdin" else "listen", "pipe")
    chat.fc.signal(sig)
    rc = chat.fc.assert_signaled(sig, timeout=5)
    assert rc == -sig, chat.fc.describe()
    assert not wait_sessions_empty([chat.fc.pid], timeout=1.0)
    assert chat.peer.closed_by_other_side() == "eof"


def test_ctrl_c_on_terminal():
    chat = alt_chat("connect", "pty")
    chat.fc.send(b"half a li")
    chat.fc.send(b"\x03")
    chat.fc.assert_signaled(signal.SIGINT, timeout=5)
    assert chat.peer.closed_by_other_side() == "eof"
    assert b"half a li" not in chat.peer.buf, "an unfinished line must not be sent"


def test_connection_reset_by_peer():
    chat = alt_chat("listen", "pipe")
    chat.peer.send(b"one\n")
    chat.fc.wait_out_bytes(b"one\n")
    chat.fc.send(b"two\n")
    chat.peer.expect(b"two\n")
    chat.peer.reset()
    chat.fc.assert_exit(1, timeout=5)
    assert re.search(
        rf"forkchat: read from {re.escape(chat.peer_name)}: Connection reset by peer\n", chat.fc.err_text()
    ), chat.fc.describe()


# --- issue 10: data never cut off, memory bounded, the turn shown -------------


def vm_peak_kib(pid) -> int:
    """The process's peak resident memory (VmHWM in /proc/PID/status), KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


@pytest.mark.parametrize("listen_mode", ["fork", "alternate"])
def test_input_after_the_peer_has_ended_is_still_sent(listen_mode):
    """Row 2 of issue 10: `echo srv | forkchat listen P > s.out &` and
    `printf '1\\n2\\n3\\n' | forkchat connect 127.0.0.1 P --mode alternate`:
    the listener's input ends after one line, so it has no more turns; the
    3 must still reach it (it was lost, and both exited 0)."""
    listen_args = () if listen_mode == "fork" else ALT
    listener, client = forkchat_pair(listen_args, ALT)
    listener.send(b"srv\n")
    listener.close_stdin()
    client.send(b"1\n2\n3\n")
    client.close_stdin()
    listener.assert_exit(0)
    client.assert_exit(0)
    assert listener.out_bytes() == b"1\n2\n3\n", "every line of a pipe is sent" + listener.describe()
    assert client.out_bytes() == b"srv\n", client.describe()


def test_a_long_line_without_newline_is_sent_in_pieces_with_bounded_memory():
    """Row 3: a 40 MB line with no newline took 8.5 s and 71 MB, growing
    about quadratically. It is sent as it is read, a buffer at a time."""
    chat = alt_chat("connect", "pipe")
    fc, peer = chat.fc, chat.peer
    data = b"x" * (40 << 20)
    started = time.monotonic()
    fc.feed(data)
    received = bytearray()
    peak = 0
    peer.sock.settimeout(20)
    while len(received) < len(data):
        chunk = peer.sock.recv(1 << 20)
        assert chunk, f"EOF after {len(received)} bytes" + fc.describe()
        received += chunk
        if len(received) % (4 << 20) < len(chunk):
            peak = max(peak, vm_peak_kib(fc.pid))
    elapsed = time.monotonic() - started
    peak = max(peak, vm_peak_kib(fc.pid))
    peer.expect_eof(what="(the input ended: FIN)")
    peer.close()
    fc.assert_exit(0)
    assert received == data
    assert peak < 16 * 1024, f"peak resident memory {peak} KiB for a 40 MB line (bounded: a buffer at a time)"
    assert elapsed < 15, f"40 MB took {elapsed:.1f} s"


def test_an_endless_line_notices_the_peer_reset():
    """Row 3: from `cat /dev/zero`, memory grew without bound and a reset
    from the peer was never noticed. Now the line goes out as it is read,
    and the reset ends the chat at once, named."""
    zero = os.open("/dev/zero", os.O_RDONLY)
    try:
        chat = start_chat("connect", zero, *ALT)
    finally:
        os.close(zero)
    fc, peer = chat.fc, chat.peer
    peer.sock.settimeout(10)
    got = 0
    while got < (8 << 20):
        chunk = peer.sock.recv(1 << 20)
        assert chunk, "EOF" + fc.describe()
        got += len(chunk)
    assert vm_peak_kib(fc.pid) < 16 * 1024, "memory must stay bounded on an endless line" + fc.describe()
    peer.reset()
    fc.assert_exit(1, timeout=10)
    assert re.search(
        rf"forkchat: write to {re.escape(chat.peer_name)}: (Connection reset by peer|Broken pipe)\n", fc.err_text()
    ), fc.describe()


def test_your_turn_is_shown_on_a_terminal_only():
    """On a terminal, each send turn says so on stderr (issue 12, 5); from a
    pipe, nothing is added."""
    chat = alt_chat("connect", "pty")
    fc, peer = chat.fc, chat.peer
    cue = "forkchat: your turn: type a line\n"
    fc.wait_err(re.escape(cue))
    fc.type(b"one\n")
    peer.expect(b"one\n")
    fc.wait_settled()  # in its receive turn, asleep, all its stderr collected
    assert fc.err_text().count(cue) == 1, "waiting for the peer's line is not our turn" + fc.describe()
    peer.send(b"two\n")
    fc.wait_out_bytes(b"< two\n")
    fc.wait_err(f"({re.escape(cue)}.*){{2}}", timeout=5)
    peer.close()
    fc.assert_exit(0, timeout=5)

    piped = alt_chat("connect", "pipe")
    piped.fc.send(b"one\n")
    piped.peer.expect(b"one\n")
    piped.peer.close()
    piped.fc.close_stdin()
    piped.fc.assert_exit(0)
    assert "your turn" not in piped.fc.err_text(), piped.fc.describe()
