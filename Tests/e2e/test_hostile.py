"""Hostile environments (issue 10, rows 1, 4, 7, 8, 9): closed standard
descriptors, a descriptor limit, a file size limit, an address space limit,
non-blocking standard input and output.

What must hold in each: no byte of forkchat's own ever reaches the peer, no
byte of the peer's is lost or sent back to it, and a failure is one line
naming what failed (never a crash, a wrong message or a busy loop)."""

import os
import subprocess
import threading
import time

import pytest

from harness import (
    FORKCHAT,
    WAIT,
    Peer,
    Proc,
    children_of,
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


def accept_unless_exited(server, fc):
    """The connection forkchat makes, or None if it exits first."""
    server.settimeout(0.05)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            return server.accept()[0]
        except OSError:
            if fc.popen.poll() is not None:
                return None
    raise AssertionError("forkchat neither connected nor exited" + fc.describe())


def chat_under_limit(limit, mode, data):
    """forkchat connects under a prlimit(1) limit; its peer sends `data` and
    half-closes. Returns the ended Proc and its stderr lines after
    "connected to"."""
    port = free_port()
    server = listen_socket(port)
    fc = limited_forkchat(limit, "connect", "127.0.0.1", str(port), *mode_args(mode))
    conn = accept_unless_exited(server, fc)
    try:
        if conn is not None:
            peer = Peer(conn)
            peer.send(data)
            peer.shutdown_write()
    except OSError:
        pass  # it failed right after connecting
    fc.wait()
    server.close()
    return fc, [line for line in stderr_lines(fc) if not line.startswith("forkchat: connected to")]


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
        fc, lines = chat_under_limit(f"--nofile={limit}:{limit}", mode, b"hi\n")
        rc = fc.popen.returncode
        if rc == 0:
            assert fc.out_bytes() == b"hi\n", f"--nofile={limit}" + fc.describe()
            worked = True
        else:
            assert rc == 1 and len(lines) == 1, f"--nofile={limit}: one line and exit 1" + fc.describe()
            assert lines[0].startswith("forkchat: ") and lines[0].endswith(": Too many open files"), (
                f"--nofile={limit}: the failure must name itself" + fc.describe()
            )
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


def cpu_seconds(pid) -> float:
    """CPU time used so far by a process and its live children (utime + stime)."""
    total = 0.0
    for p in [pid, *[c.pid for c in children_of(pid)]]:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def test_address_space_limit_fails_with_one_line():
    """Row 9: with RLIMIT_AS just above what the binary needs to start, a
    session ran into "Fatal error: failed to allocate" and a stack trace.
    Every limit from there up must give a working chat or one line, exit 1:
    a coarse scan finds where the outcome changes (the session's buffers
    fit; the sender thread's stack fits), a fine one looks at each change."""
    prlimit = require_tool("prlimit")

    def starts(kib):
        run = subprocess.run([prlimit, f"--as={kib * 1024}", FORKCHAT, "--version"], capture_output=True, timeout=10)
        return run.returncode == 0

    low, high = 1024, 64 * 1024  # the least limit under which --version works
    assert starts(high), "forkchat --version does not run with 64 MiB of address space"
    while high - low > 16:
        middle = (low + high) // 2
        low, high = (low, middle) if starts(middle) else (middle, high)
    needs = high + 32  # the layout is randomised: what it needs varies by a few KiB from run to run

    def outcome(mode, kib) -> str:
        fc, lines = chat_under_limit(f"--as={kib * 1024}", mode, b"x" * 200_000)
        rc = fc.popen.returncode
        where = f"--mode {mode}, RLIMIT_AS {kib} KiB (--version needs {needs} KiB)"
        if rc == 0:
            assert fc.out_bytes() == b"x" * 200_000, where + fc.describe()
            return "chat"
        assert rc == 1 and len(lines) == 1 and lines[0].startswith("forkchat: "), (
            where + ": exit 1 and one line" + fc.describe()
        )
        return lines[0].split(":")[1]  # the call that failed

    for mode in MODES:
        coarse = []
        for kib in range(needs, needs + 10 * 1024, 128):
            coarse.append((kib, outcome(mode, kib)))
            if [o for _, o in coarse[-4:]] == ["chat"] * 4:
                break
        assert coarse[-1][1] == "chat", f"--mode {mode} never ran within 10 MiB above the binary's needs"
        for (low, before), (_, after) in zip(coarse, coarse[1:]):
            if before != after:
                for kib in range(low + 16, low + 128, 16):
                    outcome(mode, kib)


# --- row 4: non-blocking standard input and output ------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_non_blocking_stdout_is_waited_for(mode):
    """Row 4: stdout is a pipe whose open file is non-blocking (its other
    users set O_NONBLOCK): EAGAIN means wait with poll(2). It failed with
    "Resource temporarily unavailable" after ~420 KB, or spun on splice."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    port = free_port()
    server = listen_socket(port)
    fc = Proc([FORKCHAT, "connect", "127.0.0.1", str(port), *mode_args(mode)], stdin="devnull", stdout=write_end,
              name="forkchat")
    os.close(write_end)
    peer = accept_peer(server, fc)
    data = os.urandom(4 << 20)
    peer.send_async(data)
    received = bytearray()
    paused_cpu = None
    while True:
        if len(received) >= (1 << 20) and paused_cpu is None:
            before = cpu_seconds(fc.pid)
            time.sleep(0.6)  # the reader stops: stdout stays full
            paused_cpu = cpu_seconds(fc.pid) - before
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        received += chunk
        if len(received) == len(data):
            peer.shutdown_write()
    os.close(read_end)
    assert fc.wait() == 0, fc.describe()
    assert received == data, f"received {len(received)} of {len(data)} bytes" + fc.describe()
    assert paused_cpu < 0.15, f"{paused_cpu:.2f} s of CPU in 0.6 s with stdout full: a busy loop" + fc.describe()


@pytest.mark.parametrize("mode", MODES)
def test_non_blocking_stdin_is_waited_for(mode):
    """Row 4: stdin is a pipe whose open file is non-blocking: when it is
    empty (EAGAIN), forkchat waits with poll(2) instead of failing."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    port = free_port()
    server = listen_socket(port)
    fc = Proc([FORKCHAT, "connect", "127.0.0.1", str(port), *mode_args(mode)], stdin=read_end, name="forkchat")
    os.close(read_end)
    peer = accept_peer(server, fc)
    data = os.urandom(2 << 20)
    if mode == "alternate":  # one line, one turn: the peer never answers
        data = data.replace(b"\n", b"")
    pauses = []

    def write_slowly():
        for start in range(0, len(data), 1 << 20):  # 1 MiB, then a pause
            before = cpu_seconds(fc.pid)
            time.sleep(0.5)  # the pipe stays empty
            pauses.append(cpu_seconds(fc.pid) - before)
            view = memoryview(data)[start : start + (1 << 20)]
            while view:
                try:
                    view = view[os.write(write_end, view) :]
                except BlockingIOError:
                    time.sleep(0.01)  # (shared flag: our end is non-blocking too)
        os.close(write_end)

    writer = threading.Thread(target=write_slowly, daemon=True)
    writer.start()
    got = peer.read_to_eof(timeout=WAIT)
    writer.join(5)
    peer.close()
    assert fc.wait() == 0, fc.describe()
    assert got == data, f"the peer got {len(got)} of {len(data)} bytes" + fc.describe()
    assert max(pauses) < 0.15, f"CPU in 0.5 s with stdin empty: {pauses}: a busy loop" + fc.describe()
