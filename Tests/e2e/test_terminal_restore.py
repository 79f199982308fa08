"""The terminal given back when the receiving process (the fork session's
parent, the one the shell waits for) is killed by a signal it cannot
catch: `kill -9` (issue 19.3). The child, which outlives it for a moment,
is told by the kernel (PR_SET_PDEATHSIG) and puts back the terminal's
modes and the whole screen's scrolling before it ends.

Seen in tmux under /bin/sh (dash, which does not restore the modes
itself: before the fix, Enter did nothing and typing was invisible) and
under bash (which restores the modes, but not the scroll region: shell
output was stuck on the bottom rows). After the kill, a typed command runs,
is echoed, and its output scrolls the whole window."""

import os
import re
import signal

import pytest

from harness import wait_until
from terminal import Terminal
from test_screen import connect  # the chat started in the window, `stty -g` saved

SHELLS = {
    "dash": "dash -i",
    "bash": "bash --norc --noprofile -i",
}


@pytest.fixture(params=sorted(SHELLS))
def term(request):
    t = Terminal(shell=SHELLS[request.param])
    try:
        yield t
    finally:
        t.close()


def kill_parent(term):
    parent, child = term.wait_forkchat(2)
    os.kill(parent, signal.SIGKILL)
    wait_until(lambda: not term.forkchat_pids(), what="both forkchat processes gone")
    try:  # the orphaned child came to this process, the tests' subreaper
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 3, "the child ends with ChildExit.parentGone"
    except ChildProcessError:
        pass
    return child


def check_shell_works(term):
    # Typed, echoed, run: Enter works (ICRNL, ICANON), typing shows (ECHO).
    term.type("echo typed-after-the-kill")
    term.wait_screen(r"echo typed-after-the-kill$", what="the typed command, echoed")
    term.keys("Enter")
    term.wait_screen(r"^typed-after-the-kill$", what="the command's output")
    # Output scrolls the whole window: 60 lines in 24 rows leave the last
    # 23 on rows 1 to 23, the prompt on the bottom row.
    term.run("seq 1 60")
    rows = term.screen()
    numbers = [r for r in rows if re.fullmatch(r"\d+", r)]
    assert numbers and numbers[-1] == "60", term.show()
    last = rows.index("60")
    assert rows[last - 3 : last + 1] == ["57", "58", "59", "60"], term.show()
    assert not any("connected" in r for r in rows), term.show()
    term.run(f"stty -g > {term.dir}/after")
    with open(f"{term.dir}/before") as b, open(f"{term.dir}/after") as a:
        assert a.read() == b.read(), "the terminal's modes are those of before the chat"


def test_kill_9_of_the_receiving_process_gives_the_terminal_back(term):
    peer = connect(term)
    term.type("half a line")  # typed, not sent: must never reach the shell
    kill_parent(term)
    check_shell_works(term)
    assert not any("half a line" in r and "not found" in r for r in term.history()), term.show()
    peer.close()


def test_kill_9_of_the_receiving_process_in_the_plain_chat(term):
    peer = connect(term, plain=True)
    kill_parent(term)
    check_shell_works(term)
    peer.close()
