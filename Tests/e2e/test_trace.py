"""--trace: one stderr line per process event,
`trace <ms> <pid> <role> <event> [details]`.

For each fork-mode teardown path, the events of each process are checked as
an exact sequence (nothing missing, nothing extra), the pids against the real
processes (the parent is the pid the test started, the child the one found in
/proc), the times against each other (non-decreasing per process; the child
counts from the parent's start), and the order across the two processes.
Lines of different processes are ordered by causality where there is one
(the child writes `exit 0` before it exits, so before the parent's waitpid
returns) and by their times otherwise (`parent fork` and `child start` race
for the pipe after fork()). Then threads, poll, alternate, echo and connect
traces; the chat screen's updates (`draw`), one event per write(2) of the
process that wrote it; and no trace at all without --trace."""

import os
import re
import signal
import time

import pytest

from harness import (
    Forkchat,
    Peer,
    forkchat_pair,
    free_port,
    listen_socket,
    parse_trace,
    proc_children,
    require_tool,
    start_chat,
    start_listener,
    threads_of,
    wait_until,
)
from terminal import Terminal

ROLES = ["listen", "connect"]


def quit_events(role):
    """What the sending side traces when the quit word is typed: the quit,
    then the FIN. The same in every mode; stdin has not ended, so no
    "eof stdin" (poll and alternate agree)."""
    return [f"{role} quit word typed", f"{role} shutdown SHUT_WR"]


def traced_chat(role, stdin, *args, mode="default"):
    chat = start_chat(role, stdin, "--trace", *args, mode=mode)
    shape = chat.fc.wait_shape(mode)  # the child's pid (fork), the sender's tid (threads)
    chat.fc.send(b"ping\n")
    chat.peer.expect(b"ping\n")
    chat.peer.send(b"pong\n")
    chat.fc.wait_out(rb"pong\n")
    return chat, shape


def opening(chat):
    """The main process's events before the session, by role."""
    if chat.role == "listen":
        return [
            r"main socket fd=\d+ AF_INET6 SOCK_STREAM",
            rf"main bind :: port {chat.peer.remote[1]}",
            r"main listen backlog=\d+",
            rf"main accept fd=\d+ 127\.0\.0\.1 port {chat.peer.port}",
        ]
    return [
        r"main socket fd=\d+ AF_INET SOCK_STREAM",
        rf"main connect fd=\d+ 127\.0\.0\.1 port {chat.peer.local[1]}",
    ]


def by_pid(events):
    groups = {}
    for e in events:
        groups.setdefault(e.pid, []).append(e)
    return groups


def assert_sequence(events, patterns, who, fc):
    texts = [e.text for e in events]
    ok = len(texts) == len(patterns) and all(re.fullmatch(p, t) for p, t in zip(patterns, texts))
    assert ok, (
        f"{who}: trace events differ\n  expected: {patterns}\n  got:      {texts}" + fc.describe()
    )


def assert_times(events, fc, key=lambda e: e.pid):
    """Non-decreasing times within each process (or thread: `key`)."""
    last = {}
    for e in events:
        k = key(e)
        assert e.ms >= last.get(k, 0.0), f"time goes back in {k}: {e} after {last[k]:.3f}" + fc.describe()
        last[k] = e.ms
    # The times count ms since the start: nothing later than the process lived.
    lifetime_ms = (fc.ended - fc.started) * 1000
    assert max(e.ms for e in events) <= lifetime_ms + 1, f"times beyond the lifetime {lifetime_ms:.0f} ms" + fc.describe()


def find(events, pattern):
    hits = [e for e in events if re.fullmatch(pattern, e.text)]
    assert len(hits) == 1, f"expected one {pattern!r}, found {hits}"
    return hits[0]


def fork_checks(chat, child, parent_patterns, child_patterns):
    """The common checks of a fork-mode trace; returns (events, parent, child)."""
    fc = chat.fc
    events = fc.trace()
    groups = by_pid(events)
    assert set(groups) == {fc.pid, child}, (
        f"trace pids {sorted(groups)}: expected the parent {fc.pid} and the child {child} only" + fc.describe()
    )
    assert {e.role for e in groups[fc.pid]} <= {"main", "parent"}, fc.describe()
    assert {e.role for e in groups[child]} == {"child"}, fc.describe()
    assert_sequence(groups[fc.pid], opening(chat) + [rf"parent fork child={child}"] + parent_patterns, "parent", fc)
    assert_sequence(groups[child], [r"child start sends stdin to the socket"] + child_patterns, "child", fc)
    assert_times(events, fc)
    fork = find(events, rf"parent fork child={child}")
    start = groups[child][0]
    # The child inherits the start time: its clock goes on from the fork's
    # (a clock started again would go back; assert_times bounds it above
    # by the parent's lifetime).
    assert fork.ms <= start.ms, f"child start {start} vs {fork}" + fc.describe()
    return events, groups[fc.pid], groups[child]


# --- fork: the teardown paths ------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_fork_input_ends(role):
    chat, child = traced_chat(role, "pipe")
    fc, peer = chat.fc, chat.peer
    before = time.monotonic()  # before the waitpid below
    fc.close_stdin()
    peer.expect_eof()
    fc.wait_err(rf"parent waitpid {child} exited 0\n")
    time.sleep(0.3)  # a known gap, to check that the times are in ms
    peer.close()
    fc.assert_exit(0)
    bracket_ms = (fc.ended - before) * 1000  # the gap lies inside this
    events, parent, kid = fork_checks(
        chat,
        child,
        ["parent signal SIGCHLD", rf"parent waitpid {child} exited 0", "parent eof socket", "main exit 0"],
        ["child eof stdin", "child shutdown SHUT_WR", "child exit 0"],
    )
    exit0 = find(events, "child exit 0")
    sigchld = find(events, "parent signal SIGCHLD")
    reaped = find(events, rf"parent waitpid {child} exited 0")
    # Causal order: written before the child exits, so before its SIGCHLD and waitpid.
    assert exit0.index < sigchld.index < reaped.index and exit0.ms <= reaped.ms, fc.describe()
    gap = find(events, "parent eof socket").ms - reaped.ms
    # Load can stretch the gap, but not beyond what the test saw around it.
    assert 290 <= gap <= bracket_ms + 1, (
        f"0.3 s between waitpid and the peer's FIN shows as {gap:.3f} ms ({bracket_ms:.0f} ms around it)"
        + fc.describe()
    )


@pytest.mark.parametrize("role", ROLES)
def test_fork_quit_word_on_terminal(role):
    chat, child = traced_chat(role, "pty")
    fc, peer = chat.fc, chat.peer
    fc.type(b"exit\n")
    peer.expect(b"exit\n")
    peer.expect_eof()
    fc.wait_err(rf"parent waitpid {child} exited 0\n")
    peer.close()
    fc.assert_exit(0, timeout=5)
    events, _, _ = fork_checks(
        chat,
        child,
        ["parent signal SIGCHLD", rf"parent waitpid {child} exited 0", "parent eof socket", "main exit 0"],
        quit_events("child") + ["child exit 0"],
    )
    assert find(events, "child exit 0").index < find(events, rf"parent waitpid {child} exited 0").index


@pytest.mark.parametrize("role", ROLES)
def test_fork_peer_closes_terminal(role):
    """The peer's FIN with a person at the terminal: the parent kills the
    child (SIGTERM), reaps it, and exits 0."""
    chat, child = traced_chat(role, "pty")
    chat.peer.shutdown_write()
    chat.fc.assert_exit(0, timeout=5)
    events, parent, _ = fork_checks(
        chat,
        child,
        ["parent eof socket", rf"parent kill {child} SIGTERM", rf"parent waitpid {child} signaled SIGTERM", "main exit 0"],
        [],  # killed while waiting for a line: nothing more from the child
    )


@pytest.mark.parametrize("role", ROLES)
def test_fork_peer_closes_pipe(role):
    """The peer's FIN with a pipe: the child goes on until its input ends."""
    chat, child = traced_chat(role, "pipe")
    fc, peer = chat.fc, chat.peer
    peer.shutdown_write()
    fc.wait_err(r"parent eof socket\n")
    fc.send(b"after your FIN\n")
    peer.expect(b"after your FIN\n")
    fc.close_stdin()
    peer.expect_eof()
    fc.assert_exit(0)
    events, _, _ = fork_checks(
        chat,
        child,
        ["parent eof socket", "parent signal SIGCHLD", rf"parent waitpid {child} exited 0", "main exit 0"],
        ["child eof stdin", "child shutdown SHUT_WR", "child exit 0"],
    )
    assert find(events, "child exit 0").index < find(events, "parent signal SIGCHLD").index, chat.fc.describe()


@pytest.mark.parametrize("stdin", ["pipe", "pty"])
@pytest.mark.parametrize("role", ROLES)
def test_fork_sigterm_to_parent(role, stdin):
    chat, child = traced_chat(role, stdin)
    chat.fc.signal(signal.SIGTERM)
    chat.fc.assert_signaled(signal.SIGTERM, timeout=5)
    fork_checks(
        chat,
        child,
        [
            "parent signal SIGTERM",
            rf"parent kill {child} SIGTERM",
            rf"parent waitpid {child} signaled SIGTERM",
            "parent exit signal SIGTERM",
        ],
        [],
    )


@pytest.mark.parametrize("stdin", ["pipe", "pty"])
@pytest.mark.parametrize("role", ROLES)
def test_fork_child_killed(role, stdin):
    chat, child = traced_chat(role, stdin)
    fc, peer = chat.fc, chat.peer
    os.kill(child, signal.SIGKILL)
    peer.expect_eof()
    fc.wait_err(r"parent shutdown SHUT_WR\n")
    peer.close()
    fc.assert_exit(1, timeout=5)
    fork_checks(
        chat,
        child,
        [
            "parent signal SIGCHLD",
            rf"parent waitpid {child} signaled SIGKILL",
            "parent shutdown SHUT_WR",
            "parent eof socket",
            "main exit 1",
        ],
        [],
    )


# --- threads, poll, alternate ------------------------------------------------


def single_process_checks(chat, patterns):
    fc = chat.fc
    events = fc.trace()
    assert {e.pid for e in events} == {fc.pid}, f"one process: every line has pid {fc.pid}" + fc.describe()
    assert_sequence(events, opening(chat) + patterns, f"--mode {chat.mode}", fc)
    assert_times(events, fc, key=lambda e: e.role == "sender")  # per thread
    return events


def threads_checks(chat, tid, tail):
    """A threads-mode trace: the opening, the main thread's "thread created"
    and the sender's "start" (in either order: the two threads race for the
    pipe), then exactly `tail`. One pid; tids checked against /proc."""
    fc = chat.fc
    events = fc.trace()
    assert {e.pid for e in events} == {fc.pid}, f"one process: every line has pid {fc.pid}" + fc.describe()
    n = len(opening(chat))
    assert_sequence(events[:n], opening(chat), "threads (opening)", fc)
    assert sorted(e.text for e in events[n : n + 2]) == sorted(
        [f"main thread created sender (main tid={fc.pid})", f"sender start tid={tid} sends stdin to the socket"]
    ), fc.describe()
    assert_sequence(events[n + 2 :], tail, "threads", fc)
    assert_times(events, fc, key=lambda e: e.role == "sender")  # per thread
    return events


@pytest.mark.parametrize("role", ROLES)
def test_threads_input_ends(role):
    chat, tid = traced_chat(role, "pipe", mode="threads")
    fc, peer = chat.fc, chat.peer
    assert tid != fc.pid and tid in threads_of(fc.pid), "the sender's tid is the second thread in /proc"
    fc.close_stdin()
    peer.expect_eof()
    fc.wait_err(r"main join sender\n")
    peer.close()
    fc.assert_exit(0)
    events = threads_checks(
        chat, tid, ["sender eof stdin", "sender shutdown SHUT_WR", "main join sender", "main eof socket", "main exit 0"]
    )
    # The sender writes its last line before it says it is done: causal.
    assert find(events, "sender shutdown SHUT_WR").index < find(events, "main join sender").index


def test_threads_quit_word():
    chat, tid = traced_chat("connect", "pty", mode="threads")
    chat.fc.type(b"exit\n")
    chat.peer.expect(b"exit\n")
    chat.peer.expect_eof()
    chat.fc.wait_err(r"main join sender\n")
    chat.peer.close()
    chat.fc.assert_exit(0, timeout=5)
    threads_checks(chat, tid, quit_events("sender") + ["main join sender", "main eof socket", "main exit 0"])


def test_threads_peer_closes_terminal():
    chat, tid = traced_chat("listen", "pty", mode="threads")
    chat.peer.shutdown_write()
    chat.fc.assert_exit(0, timeout=5)
    threads_checks(chat, tid, ["main eof socket", "main stop sender", "main join sender", "main exit 0"])


@pytest.mark.parametrize("stdin", ["pipe", "pty"])
def test_threads_sigterm(stdin):
    chat, tid = traced_chat("connect", stdin, mode="threads")
    chat.fc.signal(signal.SIGTERM)
    chat.fc.assert_signaled(signal.SIGTERM, timeout=5)
    threads_checks(
        chat, tid, ["main signal SIGTERM", "main stop sender", "main join sender", "main exit signal SIGTERM"]
    )


@pytest.mark.parametrize("role", ROLES)
def test_poll_input_ends(role):
    chat, _ = traced_chat(role, "pipe", mode="poll")
    chat.fc.close_stdin()
    chat.peer.expect_eof()
    chat.fc.wait_err(r"poll shutdown SHUT_WR\n")
    chat.peer.close()
    chat.fc.assert_exit(0)
    single_process_checks(chat, ["poll eof stdin", "poll shutdown SHUT_WR", "poll eof socket", "main exit 0"])


def test_poll_quit_word_and_sigterm():
    chat, _ = traced_chat("listen", "pty", mode="poll")
    chat.fc.type(b"exit\n")
    chat.peer.expect(b"exit\n")
    chat.peer.expect_eof()
    chat.fc.signal(signal.SIGTERM)
    chat.fc.assert_signaled(signal.SIGTERM, timeout=5)
    single_process_checks(chat, quit_events("poll") + ["poll signal SIGTERM", "poll exit signal SIGTERM"])


def test_alternate_turns():
    chat = start_chat("connect", "pipe", "--mode", "alternate", "--trace")
    fc, peer = chat.fc, chat.peer
    fc.send(b"one\n")
    peer.expect(b"one\n")
    peer.send(b"two\n")
    fc.wait_out_bytes(b"two\n")
    fc.close_stdin()
    peer.expect_eof()
    peer.close()
    fc.assert_exit(0)
    send, receive = "alternate turn send: waiting for a line on stdin", "alternate turn receive: waiting for the peer's line"
    single_process_checks(
        chat,
        [send, receive, send, "alternate eof stdin", "alternate shutdown SHUT_WR", receive, "alternate eof socket", "main exit 0"],
    )


def test_alternate_quit_word():
    chat = start_chat("listen", "pty", "--mode", "alternate", "--trace")
    fc, peer = chat.fc, chat.peer
    peer.send(b"hi\n")
    fc.wait_out_bytes(b"< hi\n")
    fc.type(b"exit\n")
    peer.expect(b"exit\n")
    peer.expect_eof()
    peer.close()
    fc.assert_exit(0, timeout=5)
    send, receive = "alternate turn send: waiting for a line on stdin", "alternate turn receive: waiting for the peer's line"
    single_process_checks(
        chat,
        [receive, send, *quit_events("alternate"), receive, "alternate eof socket", "main exit 0"],
    )


# --- echo --------------------------------------------------------------------


def echo_child_of(fc, peer) -> int:
    """The pid forked for a client: the fork line right after its accept."""
    events = fc.trace()
    accept = find(events, rf"main accept fd=\d+ 127\.0\.0\.1 port {peer.port}")
    fork = events[accept.index + 1]
    m = re.fullmatch(r"main fork child=(\d+)", fork.text)
    assert m, f"expected the fork right after {accept}, got {fork}" + fc.describe()
    return int(m[1])


def test_echo_keep_children_and_sigterm():
    port = free_port()
    fc = start_listener(port, "--echo", "--keep", "--trace", stdin="devnull",
                        expect=rf"forkchat: listening on :: port {port} ")
    a = Peer.connect("127.0.0.1", port)
    fc.wait_err(rf"main accept fd=\d+ 127\.0\.0\.1 port {a.port}\n.*\n.*main fork child=\d+\n")
    b = Peer.connect("127.0.0.1", port)
    fc.wait_err(rf"main accept fd=\d+ 127\.0\.0\.1 port {b.port}\n.*\n.*main fork child=\d+\n")
    ca, cb = echo_child_of(fc, a), echo_child_of(fc, b)
    wait_until(lambda: len(proc_children(fc.pid)) >= 2)
    kids = proc_children(fc.pid)
    assert sorted(kids) == sorted([ca, cb]), f"the forked pids {ca}, {cb} are the server's children {kids}" + fc.describe()
    a.send(b"x\n")
    a.expect(b"x\n")
    a.shutdown_write()
    a.expect_eof()
    fc.wait_err(rf"main waitpid {ca} exited 0\n")
    fc.signal(signal.SIGTERM)
    fc.assert_signaled(signal.SIGTERM, timeout=5)
    events = fc.trace()
    groups = by_pid(events)
    assert set(groups) == {fc.pid, ca}, "only the server and the child that ended write lines" + fc.describe()
    assert_sequence(groups[ca], ["echo eof socket", "echo shutdown SHUT_WR", "echo exit 0"], "echo child a", fc)
    assert_sequence(
        groups[fc.pid],
        [
            r"main socket fd=\d+ AF_INET6 SOCK_STREAM",
            rf"main bind :: port {port}",
            r"main listen backlog=\d+",
            rf"main accept fd=\d+ 127\.0\.0\.1 port {a.port}",
            rf"main fork child={ca}",
            rf"main accept fd=\d+ 127\.0\.0\.1 port {b.port}",
            rf"main fork child={cb}",
            "main signal SIGCHLD",
            rf"main waitpid {ca} exited 0",
            "main signal SIGTERM",
            rf"main kill {cb} SIGTERM",
            rf"main waitpid {cb} signaled SIGTERM",
            "main exit signal SIGTERM",
        ],
        "echo server",
        fc,
    )
    assert find(events, "echo exit 0").index < find(events, rf"main waitpid {ca} exited 0").index
    assert_times(events, fc)


def test_echo_single_client():
    port = free_port()
    fc = start_listener(port, "--echo", "--trace", stdin="devnull", expect=r"listening on")
    peer = Peer.connect("127.0.0.1", port)
    peer.send(b"hello\n")
    peer.expect(b"hello\n")
    peer.shutdown_write()
    peer.expect_eof()
    fc.assert_exit(0)
    events = fc.trace()
    assert {e.pid for e in events} == {fc.pid}, "without --keep: no child" + fc.describe()
    assert [e.text for e in events][-4:] == [
        f"main accept fd={events[-4].details.split()[0][3:]} 127.0.0.1 port {peer.port}",
        "main eof socket",
        "main shutdown SHUT_WR",
        "main exit 0",
    ], fc.describe()


# --- connecting, refusing ----------------------------------------------------


def test_connect_retry_attempts_are_100_ms_apart():
    port = free_port()
    fc = Forkchat("connect", "127.0.0.1", str(port), "--retry", "1", "--trace", stdin="devnull")
    fc.assert_exit(1, timeout=10)
    events = fc.trace()
    attempts = [e for e in events if e.event == "connect"]
    assert len(attempts) >= 3, fc.describe()
    for e in attempts:
        assert e.text == f"main connect 127.0.0.1 port {port} failed: Connection refused", fc.describe()
    gaps = [b.ms - a.ms for a, b in zip(attempts, attempts[1:])]
    # 100 ms of sleep between two attempts (the last sleep is cut at the
    # deadline): never closer (load only stretches a gap), and, since a
    # second holds about ten, at least one gap near 100 ms, not a longer
    # period. Attempts within 1 s at least 95 ms apart: at most 12.
    assert all(g >= 95 for g in gaps[:-1]), f"retries every 100 ms: gaps {gaps}" + fc.describe()
    assert min(gaps[:-1]) <= 300, f"retries every 100 ms: gaps {gaps}" + fc.describe()
    assert len(attempts) <= 12, fc.describe()
    assert events[-1].text == "main exit 1", fc.describe()
    assert_times(events, fc)


def test_refused_by_allow_is_reset():
    port = free_port()
    fc = start_listener(port, "--allow", "127.0.0.1", "--trace", stdin="devnull", expect=r"listening on")
    stranger_port, how, _ = Peer.turned_away("127.0.0.1", port, source="127.0.0.2")
    fc.wait_err(r"main close fd=\d+ not allowed, RST\n")
    assert how == "reset"
    events = fc.trace()
    accept = find(events, rf"main accept fd=\d+ 127\.0\.0\.2 port {stranger_port}")
    close = find(events, r"main close fd=\d+ not allowed, RST")
    assert accept.details.split()[0] == close.details.split()[0] and accept.index + 1 == close.index, fc.describe()
    fc.signal(signal.SIGTERM)
    fc.assert_signaled(signal.SIGTERM, timeout=5)


# --- the chat screen: one draw event per write(2) ------------------------------

WRITE_TO_STDOUT = re.compile(r'(\d+) +write\(1, ".*"(?:\.\.\.)?, (\d+)(?:\)| <unfinished)')


def test_screen_draws_are_traced_one_per_write():
    """With --trace and stderr not the terminal, the chat screen stays up,
    and each screen update is one `draw` event of the process that wrote
    it, with its byte count: the same list, process by process, as the
    write(2) calls to standard output that strace sees. The layout is drawn
    by the main process before fork, the input line by the child, the
    conversation and the status row by the parent."""
    strace = require_tool("strace")
    term = Terminal(columns=60, rows=12)
    try:
        port = free_port()
        server = listen_socket(port)
        writes, trace = f"{term.dir}/writes", f"{term.dir}/trace"
        term.type(f'{strace} -f -qq -e trace=write -e signal=none -o {writes} '
                  f'"$FORKCHAT" connect 127.0.0.1 {port} --trace 2>{trace}')
        term.keys("Enter")
        peer = Peer.accept(server)
        server.close()
        term.wait_screen(rf"127\.0\.0\.1 port {port} · connected", what="the screen's status row")
        term.type("half")
        term.wait_screen(r"^> half$")
        peer.send(b"a line from the peer\n")
        rows = term.wait_screen(r"^127\.0\.0\.1: a line from the peer$")
        assert rows[-1] == "> half", term.show()
        term.keys("Enter")
        peer.expect(b"half\n")
        term.wait_screen(r"^you: half$")
        term.keys("C-d")
        peer.expect_eof()
        peer.close()
        term.wait_screen(lambda rows: rows[term.cursor()[0] - 1] == "$", what="the shell's prompt")
        assert term.exit_status() == 0, term.show()
        events = parse_trace(open(trace).read())
        with open(writes) as f:
            called = [(int(m[1]), int(m[2])) for m in map(WRITE_TO_STDOUT.match, f) if m]
    finally:
        term.close()
    draws = [e for e in events if e.event == "draw"]
    # Process by process: across the two, a write and its trace line are two
    # calls, and the other process may write in between.
    for pid in {pid for pid, _ in called} | {e.pid for e in draws}:
        traced = [int(e.details.split("bytes=")[1]) for e in draws if e.pid == pid]
        assert traced == [count for p, count in called if p == pid], (pid, draws, called)
    fork = next(e for e in events if e.event == "fork")
    child = int(fork.details.split("=")[1])
    parts = {(e.role, e.details.split()[0]) for e in draws}
    assert parts == {("main", "layout"), ("child", "input"), ("parent", "conversation"), ("parent", "status"),
                     ("parent", "leave")}, parts
    assert draws[0].text.startswith("main draw layout") and draws[0].index < fork.index
    assert all((e.pid == child) == (e.role == "child") for e in draws), draws


# --- no --trace, no trace ----------------------------------------------------


@pytest.mark.parametrize("mode", ["fork", "threads", "poll", "alternate", "echo"])
def test_no_trace_without_the_option(mode):
    if mode == "echo":
        port = free_port()
        fc = start_listener(port, "--echo", "--keep", stdin="devnull")
        peer = Peer.connect("127.0.0.1", port)
        peer.send(b"x\n")
        peer.expect(b"x\n")
        peer.shutdown_write()
        peer.expect_eof()
        fc.wait_err(r"closed the connection\n")
        fc.signal(signal.SIGTERM)
        fc.assert_signaled(signal.SIGTERM, timeout=5)
    else:
        listener, client = forkchat_pair(["--mode", mode], ["--mode", mode])
        client.send(b"c\n")
        listener.wait_out_bytes(b"c\n")
        listener.send(b"l\n")
        client.wait_out_bytes(b"l\n")
        client.close_stdin()
        listener.close_stdin()
        listener.assert_exit(0)
        client.assert_exit(0)
        assert "trace " not in client.err_text(), client.describe()
        fc = listener
    assert "trace " not in fc.err_text(), fc.describe()
    assert parse_trace(fc.err_text()) == []
