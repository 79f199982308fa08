"""Data: both directions, full duplex, half-close, byte-exactness on a
non-terminal stdout, and how a terminal stdout shows the peer's bytes; in
fork mode (the default, without --mode) and in threads and poll mode, which
share its contract and wire format."""

import os
import re

import pytest

from harness import CONTRACT_MODES, forkchat_pair, mode_args, sha, start_chat

ROLES = ["listen", "connect"]
MODES = CONTRACT_MODES  # default (fork without --mode), threads, poll
MiB = 1 << 20


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES + ["fork"])  # "fork": --mode fork given explicitly
def test_both_directions_with_raw_peer(mode, role):
    chat = start_chat(role, "pipe", mode=mode)
    fc, peer = chat.fc, chat.peer
    fc.send(b"hello from forkchat\n")
    peer.expect(b"hello from forkchat\n")
    peer.send(b"hello from the peer\n")
    fc.wait_out_bytes(b"hello from the peer\n")
    fc.send(b"second line\n")
    peer.expect(b"second line\n")
    fc.close_stdin()
    peer.expect_eof(what="after forkchat's input ended")
    peer.send(b"bye\n")
    peer.close()
    fc.assert_exit(0)
    assert fc.out_bytes() == b"hello from the peer\nbye\n", fc.describe()
    assert f"forkchat: {chat.peer_name} closed the connection\n" in fc.err_text(), fc.describe()


# The wire format is the same in every mode: any two can talk.
PAIRS = [("default", "default"), ("threads", "threads"), ("poll", "poll"), ("fork", "threads"),
         ("threads", "poll"), ("poll", "default")]


@pytest.mark.parametrize("listen_mode,connect_mode", PAIRS, ids=[f"{l}-{c}" for l, c in PAIRS])
def test_forkchat_to_forkchat_both_directions(listen_mode, connect_mode):
    listener, client = forkchat_pair(mode_args(listen_mode), mode_args(connect_mode))
    listener.send(b"from listener\n")
    client.wait_out_bytes(b"from listener\n")
    client.send(b"from client\n")
    listener.wait_out_bytes(b"from client\n")
    listener.close_stdin()
    client.close_stdin()
    listener.assert_exit(0)
    client.assert_exit(0)
    assert listener.out_bytes() == b"from client\n", listener.describe()
    assert client.out_bytes() == b"from listener\n", client.describe()


@pytest.mark.parametrize("mode", MODES)
def test_full_duplex_16_mib_each_way(mode):
    a_data = os.urandom(16 * MiB)
    b_data = os.urandom(16 * MiB)
    listener, client = forkchat_pair(mode_args(mode), mode_args(mode))
    listener.feed(a_data)
    client.feed(b_data)
    listener.assert_exit(0, timeout=20)
    client.assert_exit(0, timeout=20)
    got_by_client = client.out_bytes()
    got_by_listener = listener.out_bytes()
    assert len(got_by_client) == len(a_data) and sha(got_by_client) == sha(a_data), (
        f"listener->client: {len(got_by_client)} bytes, sha256 differs" + client.describe()
    )
    assert len(got_by_listener) == len(b_data) and sha(got_by_listener) == sha(b_data), (
        f"client->listener: {len(got_by_listener)} bytes, sha256 differs" + listener.describe()
    )
    assert listener.feed_error is None and client.feed_error is None


@pytest.mark.parametrize("silent", ["listen", "connect"], ids=["listener-stdin-devnull", "client-stdin-devnull"])
@pytest.mark.parametrize("mode", MODES)
def test_half_close_keeps_the_other_direction(mode, silent):
    """One side's input is empty: it half-closes at once, and 16 MiB sent the
    other way still arrive whole."""
    data = os.urandom(16 * MiB)
    listener, client = forkchat_pair(
        mode_args(mode),
        mode_args(mode),
        listen_stdin="devnull" if silent == "listen" else "pipe",
        connect_stdin="devnull" if silent == "connect" else "pipe",
    )
    sender, receiver = (client, listener) if silent == "listen" else (listener, client)
    # The sender's parent sees the silent side's FIN first, and must go on.
    sender.wait_err(r"closed the connection\n")
    sender.feed(data)
    sender.assert_exit(0, timeout=20)
    receiver.assert_exit(0, timeout=20)
    got = receiver.out_bytes()
    assert len(got) == len(data) and sha(got) == sha(data), f"received {len(got)} of {len(data)} bytes" + receiver.describe()
    assert sender.out_bytes() == b"", sender.describe()


PAYLOADS = {
    "binary": bytes(range(256)) * 64 + os.urandom(64 * 1024),
    "nul": b"\x00" * 1000 + b"a\x00b\x00\n\x00",
    "invalid-utf8": b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xed\xa0\x80\xc0\xaf\n\x80",
    "crlf": b"line one\r\nline two\r\n\r\n\rlone cr\r",
    "1mb-line": b"x" * 1_000_000 + b"\n",
    "no-newline": b"no newline at the end",
}


@pytest.mark.parametrize("payload", PAYLOADS, ids=list(PAYLOADS))
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_byte_exact_peer_to_stdout(mode, role, payload):
    data = PAYLOADS[payload]
    chat = start_chat(role, "pipe", mode=mode)
    chat.peer.send(data)
    chat.peer.shutdown_write()
    chat.fc.wait_err(r"closed the connection\n")
    chat.fc.close_stdin()
    chat.peer.expect_eof()
    chat.fc.assert_exit(0)
    got = chat.fc.out_bytes()
    assert got == data, f"stdout differs: {len(got)} bytes vs {len(data)}" + chat.fc.describe()


@pytest.mark.parametrize("payload", PAYLOADS, ids=list(PAYLOADS))
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_byte_exact_stdin_to_peer(mode, role, payload):
    data = PAYLOADS[payload]
    chat = start_chat(role, "pipe", mode=mode)
    chat.fc.feed(data)
    got = chat.peer.read_to_eof(timeout=15)
    assert got == data, f"peer got {len(got)} bytes vs {len(data)}" + chat.fc.describe()
    chat.peer.close()
    chat.fc.assert_exit(0)
    assert chat.fc.out_bytes() == b""


# ---------------------------------------------------------------------------
# A terminal on stdout


def strip_ansi(text: bytes) -> bytes:
    return re.sub(rb"\x1b\[[0-9;]*m", b"", text)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", MODES)
def test_terminal_shows_peer_lines_with_marker(mode, role):
    chat = start_chat(role, "pty", mode=mode)
    fc, peer = chat.fc, chat.peer
    peer.send(b"hello\n")
    fc.wait_out(rb"(?m)^< hello\n")
    peer.send(b"no newline")
    fc.wait_out(rb"(?m)^< no newline\n")  # ended with a newline of its own
    peer.send(b"next\n")
    fc.wait_out(rb"(?m)^< next\n")
    peer.send(b"a\x1b[2Jb\x07c\x00d\te\x7f\n")
    fc.wait_out(rb"(?m)^< a\^\[\[2Jb\^Gc\^@d\te\^\?\n")
    peer.shutdown_write()
    fc.assert_exit(0, timeout=5)
    out = fc.out_bytes()
    assert b"\x1b" not in out, "NO_COLOR=1: no escape sequences" + fc.describe()
    assert b"\x07" not in out and b"\x00" not in out, "control characters must not reach the terminal" + fc.describe()
    assert re.search(rb"(?m)^< no newline\n< next\n", out), fc.describe()


@pytest.mark.parametrize("mode", MODES + ["alternate"])
def test_the_first_bytes_of_a_character_that_never_came_whole_are_shown(mode):
    """The peer closes in the middle of a UTF-8 character: its first bytes,
    held back for the rest, are shown once it has closed, not lost. (The
    listening side: in alternate mode it receives first.)"""
    chat = start_chat("listen", "pty", mode=mode)
    fc, peer = chat.fc, chat.peer
    peer.send(b"tail\xe6\xbc")
    fc.wait_out(rb"(?m)^< tail\n")
    peer.shutdown_write()
    fc.wait_out(rb"(?m)^< <E6><BC>\n")
    fc.close_stdin()
    fc.assert_exit(0, timeout=5)


@pytest.mark.parametrize(
    "env,coloured",
    [({"NO_COLOR": None, "TERM": "xterm-256color"}, True), ({"NO_COLOR": None, "TERM": "dumb"}, False)],
    ids=["xterm", "dumb"],
)
def test_terminal_colour(env, coloured):
    chat = start_chat("listen", "pty", env=env)
    chat.peer.send(b"coloured?\n")
    chat.fc.wait_out(rb"coloured\?")
    chat.peer.shutdown_write()
    chat.fc.assert_exit(0, timeout=5)
    out = chat.fc.out_bytes()
    line = [l for l in out.split(b"\n") if b"coloured?" in l][0]
    assert (b"\x1b[" in line) == coloured, f"colour expected: {coloured}" + chat.fc.describe()
    assert strip_ansi(line) == b"< coloured?", chat.fc.describe()


def test_pipe_stdout_is_not_decorated_even_with_terminal_stdin():
    chat = start_chat("listen", "pty", stdout="pipe")
    chat.peer.send(b"raw\x00\x1b[1m\r\n")
    chat.fc.wait_out_bytes(b"raw\x00\x1b[1m\r\n")
    chat.peer.shutdown_write()
    chat.fc.assert_exit(0, timeout=5)
    assert chat.fc.out_bytes() == b"raw\x00\x1b[1m\r\n", chat.fc.describe()
