"""pytest wiring for the forkchat end-to-end tests.

The helpers live in harness.py. Here:
- the forkchat binary is checked once (FORKCHAT, default ../../.build/debug/forkchat);
- every test runs under a hard time limit (SIGALRM), so nothing can hang;
- after every test, no process of any session the test started may remain
  (checked through /proc, zombies included, with a short settle time), and
  whatever remains is killed so that a failure does not cascade.
- Parallel runs (pytest-xdist, `-n 2`): every worker is a subreaper of its
  own and checks only the sessions its own tests started; the run shares one
  folder (harness.run_dir(), made here by the controller) where ports are
  claimed across workers and where the `alone` lock lives: a test marked
  `@pytest.mark.alone` runs with no other test of the run beside it
  (harness.RunLock).
"""

import os
import shutil
import signal
import tempfile

import pytest

import harness

TEST_TIME_LIMIT = 60  # seconds, per test


def pytest_configure(config):
    harness.become_subreaper()
    config.addinivalue_line(
        "markers", "alone: runs with no other test beside it (measures time, or loads the whole machine)"
    )
    if not hasattr(config, "workerinput") and not os.environ.get(harness.RUN_DIR_ENV):
        # The controller (or a run without xdist): the workers it starts
        # inherit the environment, hence the folder.
        folder = tempfile.mkdtemp(prefix="forkchat-e2e-")
        os.environ[harness.RUN_DIR_ENV] = folder
        config._forkchat_run_dir = folder


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the marks
def pytest_collection_modifyitems(config, items):
    """Under xdist (--dist loadgroup), the tests that share a fixture made
    once per module or class run on one worker, so that it is made once."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        for name in getattr(info, "names_closure", []):
            defs = info.name2fixturedefs.get(name) or ()
            if any(d.scope in ("module", "class", "package") for d in defs):
                item.add_marker(pytest.mark.xdist_group(item.module.__name__))
                break


def pytest_unconfigure(config):
    folder = getattr(config, "_forkchat_run_dir", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(harness.RUN_DIR_ENV, None)


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
    lock = harness.RunLock.for_test(alone=request.node.get_closest_marker("alone") is not None)
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
        try:
            problems = harness.end_test()
        finally:
            lock.release()
    report = getattr(request.node, "rep_call", None)
    if problems and report is not None and report.passed:
        pytest.fail("no process may be left behind:\n" + "\n".join(problems), pytrace=False)
