"""How the fork session's parent stops its child, and what each process
keeps of the standard descriptors (issue 18).

- A child that ignores SIGTERM (here: ignored at start, `trap '' TERM`,
  which forkchat keeps, issue 19.2) is not waited for forever: after a
  bounded wait (1 s) for its SIGCHLD, it gets SIGKILL.
- After fork, the standard descriptor a process gives up (the child's
  stdout, the parent's stdin) names /dev/null: its number stays taken."""

import os
import re
import signal
import time

from harness import LISTEN_RE, Forkchat, Peer, free_port, wait_until


def trapped_term(*args, **kwargs) -> Forkchat:
    return Forkchat(*args, prefix=("sh", "-c", "trap '' TERM; exec \"$@\"", "sh"), **kwargs)


def test_a_child_that_ignores_sigterm_gets_sigkill_after_a_bounded_wait():
    port = free_port()
    fc = trapped_term("listen", str(port), "--trace", stdin="pty")
    fc.wait_err(LISTEN_RE % port)
    peer = Peer.connect("127.0.0.1", port)
    child = fc.child_pid()
    with open(f"/proc/{child}/status") as f:
        sigign = int(next(l for l in f if l.startswith("SigIgn:")).split()[1], 16)
    assert sigign & (1 << (signal.SIGTERM - 1)), "the child inherits SIGTERM ignored"
    peer.send(b"bye\n")
    fc.wait_out_bytes(b"bye")
    started = time.monotonic()
    peer.close()  # a person at a terminal is not left typing: the child is stopped
    fc.wait_err(rf"kill {child} SIGKILL", timeout=10)
    assert fc.wait() == 0, fc.describe()
    elapsed = time.monotonic() - started
    events = [(e.event, e.details) for e in fc.trace() if e.role == "parent"]
    kills = [d for (e, d) in events if e == "kill"]
    assert kills == [f"{child} SIGTERM", f"{child} SIGKILL"], events
    assert ("waitpid", f"{child} signaled SIGKILL") in events, events
    assert 0.9 <= elapsed < 5, elapsed


def test_the_standard_descriptors_given_up_after_fork_name_dev_null():
    port = free_port()
    fc = Forkchat("listen", str(port), stdin="pipe")
    fc.wait_err(LISTEN_RE % port)
    peer = Peer.connect("127.0.0.1", port)
    child = fc.child_pid()
    # The parent never reads stdin, the child never writes stdout: each
    # gives it up just after fork (wait for that moment, it follows the fork).
    wait_until(lambda: os.readlink(f"/proc/{fc.pid}/fd/0") == "/dev/null"
               and os.readlink(f"/proc/{child}/fd/1") == "/dev/null",
               what="stdin of the parent and stdout of the child on /dev/null")
    assert os.readlink(f"/proc/{child}/fd/0").startswith("pipe:")
    assert os.readlink(f"/proc/{fc.pid}/fd/1").startswith("pipe:")
    peer.send(b"hello\n")
    fc.wait_out_bytes(b"hello\n")
    fc.send(b"and you\n")
    peer.expect(b"and you\n")
    fc.close_stdin()
    peer.expect_eof()
    peer.close()
    fc.assert_exit(0)
