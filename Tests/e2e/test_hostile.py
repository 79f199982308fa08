"""Hostile environments (issue 10, rows 1, 4, 7, 8, 9): closed standard
descriptors, a descriptor limit, a file size limit, an address space limit,
non-blocking standard input and output.

What must hold in each: no byte of forkchat's own ever reaches the peer, no
byte of the peer's is lost or sent back to it, and a failure is one line
naming what failed (never a crash, a wrong message or a busy loop)."""

import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from harness import (
    FORKCHAT,
    WAIT,
    Peer,
    Proc,
    free_port,
    listen_socket,
    mode_args,
    require_tool,
)

MODES = ["fork", "threads", "poll", "alternate"]


def shell_exec(redirect, argv, stdin="pipe", stdout="pipe"):
    """`argv` started the way a shell line starts it, with `redirect` applied
    ("2>&-", "> FILE"): sh execs it, so the pid is the command's."""
    return Proc(["sh", "-c", f'exec "$0" "$@" {redirect}', *argv], stdin=stdin, stdout=stdout, name="forkchat")


def shell_forkchat(redirect, *args, stdin="pipe", stdout="pipe"):
    return shell_exec(redirect, [FORKCHAT, *args], stdin=stdin, stdout=stdout)


def limited_forkchat(limit, *args, stdin="devnull", stdout="pipe"):
    """forkchat under a resource limit set by prlimit(1) (which execs it)."""
    argv = [require_tool("prlimit"), limit, FORKCHAT, *args]
    return Proc(argv, stdin=stdin, stdout=stdout, name="forkchat")


def accept_peer(server, fc) -> Peer:
    try:
        return Peer.accept(server, timeout=10)
    except OSError:
        raise AssertionError("forkchat did not connect" + fc.describe()) from None


def connect_when_listening(port, fc) -> Peer:
    """Connects to a forkchat that cannot announce it listens (its stderr is closed)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return Peer.connect("127.0.0.1", port)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise AssertionError("forkchat did not listen" + fc.describe()) from None
            time.sleep(0.05)


def stderr_lines(fc) -> list[str]:
    return fc.err_text().splitlines()


# --- row 1: a closed standard descriptor is never taken by the socket ---------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("role", ["connect", "listen"])
def test_closed_stderr_notices_never_reach_the_peer(role, mode):
    """`echo payload | forkchat connect HOST PORT 2>&-`: the socket must not
    become descriptor 2, or every notice would go to the peer as chat data."""
    port = free_port()
    if role == "connect":
        server = listen_socket(port)
        fc = shell_forkchat("2>&-", "connect", "127.0.0.1", str(port), *mode_args(mode))
        peer = accept_peer(server, fc)
    else:
        fc = shell_forkchat("2>&-", "listen", str(port), "-4", *mode_args(mode))
        peer = connect_when_listening(port, fc)
    if mode == "alternate" and role == "listen":
        peer.send(b"your turn\n")  # the listening side waits for a line first
    fc.send(b"payload\n")
    fc.close_stdin()
    if mode == "alternate":
        peer.expect(b"payload\n")
        peer.send(b"ok\n")  # its turn passes: the next send turn reads the end of input
    got = peer.read_to_eof()
    assert got == (b"" if mode == "alternate" else b"payload\n"), f"the peer got {got!r}: notices must never go to the socket" + fc.describe()
    peer.close()
    assert fc.wait() == 0, fc.describe()
    assert fc.err_text() == "", "stderr was closed: nothing can have been collected" + fc.describe()


@pytest.mark.parametrize("mode", MODES)
def test_closed_stdin_is_empty_input_and_nothing_is_echoed(mode):
    """`forkchat connect ... <&-`: the peer's bytes go to stdout, never back
    to the peer; a closed stdin is an input that has ended."""
    port = free_port()
    server = listen_socket(port)
    fc = shell_forkchat("<&-", "connect", "127.0.0.1", str(port), *mode_args(mode))
    peer = accept_peer(server, fc)
    peer.send(b"hello\n")
    assert peer.read_to_eof() == b"", "the peer's bytes came back to it" + fc.describe()
    peer.close()
    assert fc.wait() == 0, fc.describe()
    assert fc.out_bytes() == b"hello\n", fc.describe()
    assert "closed the connection" in fc.err_text(), fc.describe()


@pytest.mark.parametrize("mode", MODES)
def test_closed_stdout_discards_the_peer_bytes_without_an_error(mode):
    """`forkchat connect ... >&-`: what we send arrives, the peer's bytes are
    not sent back, and there is no "Bad file descriptor"."""
    port = free_port()
    server = listen_socket(port)
    fc = shell_forkchat(">&-", "connect", "127.0.0.1", str(port), *mode_args(mode))
    peer = accept_peer(server, fc)
    peer.send(b"hello\n")
    fc.send(b"mine\n")
    fc.close_stdin()
    assert peer.read_to_eof() == b"mine\n", "the peer must get our line, and only it" + fc.describe()
    peer.close()
    assert fc.wait() == 0, fc.describe()
    assert "Bad file descriptor" not in fc.err_text(), fc.describe()


# --- row 7: a descriptor limit ------------------------------------------------


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["connect", "--help"], ["help", "room"]])
def test_version_and_help_work_with_three_descriptors(argv):
    """`prlimit --nofile=3:3 forkchat --version`: the arguments must be read
    even when not one more file can be opened."""
    fc = limited_forkchat("--nofile=3:3", *argv)
    assert fc.wait() == 0, fc.describe()
    assert fc.err_text() == "", fc.describe()
    expected = "forkchat 0.1.0\n" if argv == ["--version"] else "USAGE: forkchat"
    assert expected in fc.out_text(), fc.describe()


@pytest.mark.parametrize("mode", MODES)
def test_descriptor_limit_failures_name_themselves(mode):
    """With 3 to 11 descriptors allowed, forkchat either chats normally or
    fails with one line that says "Too many open files"."""
    worked = False
    for limit in range(3, 12):
        port = free_port()
        server = listen_socket(port)
        fc = limited_forkchat(f"--nofile={limit}:{limit}", "connect", "127.0.0.1", str(port), *mode_args(mode))
        server.settimeout(5)
        try:
            conn, _ = server.accept()
            peer = Peer(conn)
            peer.send(b"hi\n")
            peer.shutdown_write()
        except OSError:
            pass  # it failed before connecting
        rc = fc.wait()
        lines = [line for line in stderr_lines(fc) if not line.startswith("forkchat: connected to")]
        if rc == 0:
            assert fc.out_bytes() == b"hi\n", f"--nofile={limit}" + fc.describe()
            worked = True
        else:
            assert rc == 1 and len(lines) == 1, f"--nofile={limit}: one line and exit 1" + fc.describe()
            assert lines[0].startswith("forkchat: ") and lines[0].endswith(": Too many open files"), (
                f"--nofile={limit}: the failure must name itself" + fc.describe()
            )
        server.close()
    assert worked, "no descriptor limit up to 11 let the chat run"


# --- row 8: a file size limit ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_file_size_limit_is_a_write_error(mode, tmp_path):
    """stdout to a file past RLIMIT_FSIZE: not killed by SIGXFSZ, but "write to
    standard output: File too large", exit 1, every byte below the limit kept."""
    limit = 100_000
    out = tmp_path / "received"
    port = free_port()
    server = listen_socket(port)
    argv = [require_tool("prlimit"), f"--fsize={limit}", FORKCHAT, "connect", "127.0.0.1", str(port)]
    fc = shell_exec(f"> {out}", argv + mode_args(mode), stdin="devnull", stdout="devnull")
    peer = accept_peer(server, fc)
    data = os.urandom(300_000)
    sender = peer.send_async(data)
    rc = fc.wait()
    sender.join(5)
    assert rc == 1, f"exit status {rc}, expected 1 (a write error)" + fc.describe()
    assert "forkchat: write to standard output: File too large\n" in fc.err_text(), fc.describe()
    assert out.read_bytes() == data[:limit], "every byte below the limit must be written"


# --- row 9: an address space limit ---------------------------------------------
