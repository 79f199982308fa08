"""pytest wiring for the forkchat end-to-end tests.

The helpers live in harness.py. Here:
- the forkchat binary is checked once (FORKCHAT, default ../../.build/debug/forkchat);
- every test runs under a hard time limit (SIGALRM), so nothing can hang;
- after every test, no process of any session the test started may remain
  (checked through /proc, zombies included, with a short settle time), and
  whatever remains is killed so that a failure does not cascade.
"""

import os
import signal

import pytest

import harness

TEST_TIME_LIMIT = 60  # seconds, per test


def pytest_configure(config):
    harness.become_subreaper()


@pytest.fixture(scope="session", autouse=True)
def forkchat_binary():
    path = harness.FORKCHAT
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.exit(
            f"forkchat binary not found at {path}: run 'swift build' in the repository "
            "or set FORKCHAT=/path/to/forkchat",
            returncode=1,
        )
    return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


class TestTimeLimit(Exception):
    pass


@pytest.fixture(scope="session")
def given_ports():
    """The ports free_port() has handed out in this run."""
    return set()


@pytest.fixture(autouse=True)
def no_process_left_behind(request, given_ports):
    """Runs the test under a time limit, then asserts that no process of the
    sessions it started is left (and kills any, whatever the outcome)."""
    harness.begin_test(given_ports)

    def on_alarm(signum, frame):
        raise TestTimeLimit(f"test took longer than {TEST_TIME_LIMIT} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        problems = harness.end_test()
    report = getattr(request.node, "rep_call", None)
    if problems and report is not None and report.passed:
        pytest.fail("no process may be left behind:\n" + "\n".join(problems), pytrace=False)
