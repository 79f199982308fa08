"""Two faults of the chat screen (issue 19 item 7), as a person sees them
in tmux (terminal.py): a SIGSTOP in the middle of an update must leave no
row out of place, and no line twice or cut in the scrollback."""

import os
import re
import signal

import pytest

from harness import Peer, free_port, listen_socket, wait_until
from terminal import Terminal


@pytest.fixture
def term():
    t = Terminal(columns=80, rows=24)
    try:
        yield t
    finally:
        t.close()


def connect_without_job_control(term):
    """Starts `forkchat connect` under a non-interactive sh (no job
    control: bash would take the terminal back when the receiving process
    stops, as it does for Ctrl-Z); returns the peer once the chat is up."""
    port = free_port()
    server = listen_socket(port)
    term.type(f"sh -c '\"$FORKCHAT\" connect 127.0.0.1 {port}; exit $?'")
    term.keys("Enter")
    peer = Peer.accept(server)
    server.close()
    term.wait_screen(rf"127\.0\.0\.1 port {port} · connected", what="the status row")
    return peer


BURST = re.compile(r"127\.0\.0\.1: burst (\d{4})")


def state(pid) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def in_write(pid) -> bool:
    """Whether the process waits in write(2) (/proc/PID/syscall: 1)."""
    with open(f"/proc/{pid}/syscall") as f:
        return f.read().split()[0] == "1"


def test_sigstop_in_the_middle_of_an_update_misplaces_nothing(term):
    """The receiving process is stopped in the middle of an update: tmux
    is stopped while a burst arrives, so the update waits for room in the
    pty, and SIGSTOP cuts its write(2) there. While it is stopped, tmux
    goes on and a key is typed: the sending process draws the input line,
    and leaves the cursor there. After SIGCONT the rest of the update must
    still land on the conversation's rows: every line of the burst once,
    whole, in order (screen and scrollback), the input line and the cursor
    as typed, the status row in place."""
    peer = connect_without_job_control(term)
    receiving = term.wait_forkchat(2)[0]  # the fork session's parent
    server = int(term.pane("pid"))  # the tmux server, which reads the pty
    count = 1500
    os.kill(server, signal.SIGSTOP)
    try:
        peer.send(b"".join(b"burst %04d\n" % n for n in range(1, count + 1)))
        assert wait_until(lambda: in_write(receiving), 10), "the receiving process never waited in write(2)"
        os.kill(receiving, signal.SIGSTOP)
        assert wait_until(lambda: state(receiving) == "T", 10)
    finally:
        os.kill(server, signal.SIGCONT)
    try:
        term.type("x")
        term.wait_screen(lambda rows: rows[-1] == "> x", what="the typed key, drawn by the sending process")
    finally:
        os.kill(receiving, signal.SIGCONT)
    rows = term.wait_screen(
        lambda rows: rows[-3] == "127.0.0.1: burst %04d" % count, what="the burst's last line"
    )
    assert rows[-1] == "> x" and "· connected" in rows[-2], term.show()
    assert term.cursor() == (24, 4), term.show()
    history = term.history()
    cut = [row for row in history if "burst" in row and not BURST.fullmatch(row)]
    assert not cut, f"rows out of place: {cut}\n" + term.show()
    numbers = [int(m.group(1)) for row in history if (m := BURST.fullmatch(row))]
    first = numbers[0]  # tmux keeps 2000 rows of scrollback
    assert numbers == list(range(first, count + 1)), f"lines missing, twice or out of order: {numbers}"
    peer.close()
    term.wait_screen(r"closed the connection", what="the peer's close")
    term.keys("C-d")
    term.wait_forkchat(0)
