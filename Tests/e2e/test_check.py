"""forkchat check on programs written the way students write them
(Tests/course/check/): every correct program passes every check, and each
mistake fails exactly the check that names it, with the words that explain
it; the exit status, --json, French messages, usage errors; and nothing of
the student's program is left behind, whatever it did (a fork bomb too).
"""

import glob
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from harness import Forkchat, free_port, run_forkchat

PROGRAMS = Path(__file__).resolve().parent.parent / "course" / "check"
ALL_CLIENT = ["starts", "exchange", "full-duplex", "half-close", "quit-word", "no-zombie", "peer-ends",
              "no-newline", "large-message"]
ALL_SERVER = ALL_CLIENT + ["restart"]


def leftovers(port):
    """Processes still running a test program with this port argument."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
        except OSError:
            continue
        if str(port).encode() in words and any(str(PROGRAMS).encode() in w for w in words):
            found.append((int(entry), b" ".join(words).decode(errors="replace")))
    return found


def check(role, program, *options, env=None, json_output=True, port=None):
    """Runs forkchat check on a program of Tests/course/check; returns
    (exit status, results by name or the text, port)."""
    port = port or free_port()
    args = ["check", role, "--port", str(port), *options]
    if json_output:
        args.append("--json")
    args += ["--", sys.executable, str(PROGRAMS / program), str(port)]
    saved = {k: os.environ.get(k) for k in ("LANG", "LC_ALL", "LC_MESSAGES")}
    try:
        for k in saved:
            os.environ.pop(k, None)
        os.environ.update(env or {"LANG": "C.UTF-8"})
        p = run_forkchat(*args, timeout=55)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    status = p.wait(1)
    assert leftovers(port) == [], "processes left behind"
    out = p.out_text()
    if not json_output:
        return status, out, port
    report = json.loads(out)
    return status, {c["name"]: c for c in report["checks"]}, report


def failed(results):
    return {name for name, c in results.items() if not c["passed"]}


CORRECT = [
    ("client", "client_fork.py", "fork"),
    ("server", "serveur_fork.py", "fork"),
    ("client", "client_threads.py", "threads"),
    ("server", "serveur_threads.py", "threads"),
    ("client", "client_alterne.py", "alternate"),
    ("server", "serveur_alterne.py", "alternate"),
]


@pytest.mark.parametrize("role,program,exercise", CORRECT, ids=[c[1] for c in CORRECT])
def test_correct_program_passes_every_check(role, program, exercise):
    status, results, report = check(role, program, "--exercise", exercise, "--quit", "exit")
    assert list(results) == (ALL_CLIENT if role == "client" else ALL_SERVER)
    assert failed(results) == set(), results
    assert status == 0
    assert report["passed"] is True and report["role"] == role and report["exercise"] == exercise


# Each mistake: the one check it fails, and words its detail or cause holds.
MISTAKES = [
    ("client", "client_zombie.py", [], {"no-zombie": "zombie"}),
    ("client", "client_orphelin.py", [], {"peer-ends": "orphan"}),
    ("client", "client_close.py", ["--quit", "exit"], {"half-close": "shutdown(SHUT_WR)", "quit-word": "close()"}),
    ("client", "client_readline.py", [], {"no-newline": "line by line"}),
    ("server", "serveur_sans_reuseaddr.py", [], {"restart": "SO_REUSEADDR"}),
    ("server", "serveur_lit_une_fois.py", ["--exercise", "alternate"], {"large-message": "only about 1024 bytes"}),
    # The alternating loop handed in as the fork version: the peer's line
    # shows only after Enter, and the end of the keyboard ends it all.
    ("client", "client_alterne.py", [], {"full-duplex": "only after Enter", "half-close": "ends the whole program"}),
    ("server", "serveur_alterne.py", [], {"full-duplex": "only after Enter", "half-close": "ends the whole program"}),
]


@pytest.mark.parametrize("role,program,options,expected", MISTAKES, ids=[m[1] + "-" + m[0] for m in MISTAKES])
def test_each_mistake_fails_its_own_check(role, program, options, expected):
    status, results, _ = check(role, program, *options)
    assert failed(results) == set(expected), {n: c["detail"] for n, c in results.items() if not c["passed"]}
    for name, words in expected.items():
        c = results[name]
        assert words in c["detail"] + " " + (c["cause"] or ""), c
        assert c["question"], c
    assert status == 1


def test_zombie_named_with_its_pid_and_the_cure():
    _, results, _ = check("client", "client_zombie.py")
    c = results["no-zombie"]
    assert "stayed a zombie" in c["detail"] and "os.waitpid()" in c["cause"]
    assert "question 4" in c["question"]


def test_orphan_named_with_its_command():
    _, results, _ = check("client", "client_orphelin.py")
    c = results["peer-ends"]
    assert "client_orphelin.py" in c["detail"] and "os.kill" in c["cause"]


@pytest.mark.parametrize(
    "program,words",
    [
        ("client_syntaxe.py", "SyntaxError"),
        ("absent.py", "can't open file"),
        ("client_bombe.py", "more than 64 processes"),
    ],
)
def test_a_program_that_does_not_start(program, words):
    status, results, _ = check("client", program)
    assert status == 1
    assert not results["starts"]["passed"] and words in results["starts"]["detail"], results["starts"]
    others = [c for n, c in results.items() if n != "starts"]
    assert others and all(c["skipped"] and not c["passed"] for c in others)


def test_fork_bomb_is_bounded_and_leaves_nothing():
    status, results, report = check("client", "client_bombe.py")
    assert "fork bomb" in results["starts"]["cause"]
    if os.geteuid() == 0 and os.path.isdir("/sys/fs/cgroup/pids"):
        # cgroup v1 here: the cgroup made for the run is gone after it.
        assert report["bound"].startswith("cgroup /sys/fs/cgroup/pids/forkchat-check-")
        assert not os.path.exists(report["bound"].split()[1].rstrip(","))
    else:
        assert report["bound"] != "none"


def test_command_not_found_and_not_executable(tmp_path):
    port = free_port()
    p = run_forkchat("check", "client", "--port", str(port), "--json", "--", "no-such-program-here")
    assert p.wait(1) == 1
    starts = json.loads(p.out_text())["checks"][0]
    assert "cannot run no-such-program-here: No such file or directory" in starts["detail"]
    script = tmp_path / "client.py"
    script.write_text("print('bonjour')\n")
    script.chmod(0o644)
    p = run_forkchat("check", "client", "--port", str(port), "--json", "--", str(script))
    assert p.wait(1) == 1
    assert "Permission denied" in json.loads(p.out_text())["checks"][0]["detail"]


def test_text_report_english_and_french():
    status, text, _ = check("client", "client_zombie.py", json_output=False)
    assert status == 1
    lines = text.splitlines()
    assert all(len(l) <= 80 for l in lines), lines
    assert lines[0].startswith("ok      starts: it connected to forkchat")
    assert any(l.startswith("FAILED  no-zombie: after Ctrl-D its son") for l in lines)
    assert lines[-1] == "7 of 8 checks passed."
    status, text, _ = check("client", "client_zombie.py", json_output=False, env={"LANG": "fr_FR.UTF-8"})
    assert status == 1
    assert "ÉCHEC   no-zombie: après Ctrl-D son fils" in text
    # At most 80 bytes a line too (an accent is two): GNU fold, cut -c.
    assert all(len(l.encode()) <= 80 for l in text.splitlines()), text
    # A check's entry is wrapped at 80 columns: read it as one line.
    assert "Cause probable : le père n'appelle pas os.wait()" in " ".join(text.split())
    assert text.splitlines()[-1] == "7 vérifications réussies sur 8."
    # LC_ALL wins over LANG, as in locale(7).
    _, text, _ = check("client", "client_fork.py", json_output=False, env={"LANG": "fr_FR.UTF-8", "LC_ALL": "C"})
    assert text.splitlines()[-1] == "All 8 checks passed."


@pytest.mark.parametrize(
    "args,message",
    [
        (["check"], "Missing expected argument '<role>'."),
        (["check", "client"], "Missing expected argument '<command>'."),
        (["check", "teacher", "--", "x"], "Invalid role 'teacher': expected client or server."),
        (["check", "client", "--exercise", "poll", "--", "x"], "expected fork, alternate or threads."),
        (["check", "client", "--port", "0", "--", "x"], "expected a number from 1 to 65535."),
        (["check", "server", "--quit", "", "--", "x"], "The quit word cannot be empty"),
    ],
)
def test_usage_errors(args, message):
    p = run_forkchat(*args)
    assert p.wait(1) == 64
    assert message in p.err_text()
    assert "Usage: forkchat check <role>" in p.err_text()


def test_help_names_the_checks():
    p = run_forkchat("check", "--help")
    assert p.wait(1) == 0
    text = p.out_text()
    for name in ALL_SERVER:
        assert name in text
    assert "-- <command> ..." in text


def test_fork_bomb_bounded_without_root_by_the_process_limit():
    """Not root: no cgroup, RLIMIT_NPROC (which binds every other user)."""
    import shutil
    import tempfile

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root (to become nobody) and setpriv")
    directory = tempfile.mkdtemp(prefix="forkchat-check-")
    try:
        os.chmod(directory, 0o755)
        shutil.copy(PROGRAMS / "client_bombe.py", directory)
        os.chmod(os.path.join(directory, "client_bombe.py"), 0o644)
        port = free_port()
        # A Python that nobody may run (sys.executable may be under /root).
        python = "/usr/bin/python3"
        if not os.access(python, os.X_OK):
            pytest.skip("no /usr/bin/python3")
        p = run_forkchat_as_nobody("check", "client", "--port", str(port), "--json", "--", python,
                                   os.path.join(directory, "client_bombe.py"), str(port))
        report = json.loads(p.out_text())
        assert report["bound"].startswith("RLIMIT_NPROC ")
        starts = report["checks"][0]
        assert not starts["passed"] and "fork bomb" in starts["cause"], starts
        assert p.wait(1) == 1
        assert [pid for pid, cmd in leftovers_of(directory)] == []
    finally:
        shutil.rmtree(directory)


def run_forkchat_as_nobody(*args):
    from harness import FORKCHAT, Proc

    p = Proc(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", FORKCHAT, *args],
             stdin="devnull", name="forkchat")
    p.wait(55)
    return p


def leftovers_of(directory):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if directory.encode() in f.read():
                        found.append((int(entry), ""))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopped_midway_it_says_how_far_and_leaves_nothing(sig):
    """A student who presses Ctrl-C while the checks run: the results so
    far are on the screen already (one entry as each check ends), the
    program under check and all it started are gone, the cgroup made for
    the run too, and forkchat ends by the signal, as a shell expects."""
    port = free_port()
    p = Forkchat("check", "server", "--port", str(port), "--",
                 sys.executable, str(PROGRAMS / "serveur_fork.py"), str(port))
    p.wait_out(r"ok +exchange: ")  # before the later checks have run
    assert "peer-ends" not in p.out_text(), p.describe()
    cgroups = glob.glob(f"/sys/fs/cgroup/**/forkchat-check-{p.pid}", recursive=True)
    assert cgroups or os.geteuid() != 0, "no cgroup for the run"
    p.signal(sig)
    p.assert_signaled(sig)
    name = signal.Signals(sig).name
    assert re.search(rf"forkchat: check stopped by {name} after \d of 9 checks\n$", p.err_text()), p.describe()
    assert "checks passed" not in p.out_text(), p.describe()
    assert leftovers(port) == [], "processes left behind"
    for path in cgroups:
        assert not os.path.exists(path), f"{path} left behind"
