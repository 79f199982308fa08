"""`make install` installs what `make` built, and never builds: `sudo make
install` runs with sudo's PATH, which has no swift. Installed into a
temporary DESTDIR, with a PATH without swift, as sudo would run it."""

import os
import subprocess

from harness import FORKCHAT, require_tool

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SUDO_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # no swift, as sudo's secure_path


def make_install(destdir, binary):
    make = require_tool("make")
    env = dict(os.environ, PATH=SUDO_PATH)
    return subprocess.run(
        [make, "-C", ROOT, "install", f"DESTDIR={destdir}", "PREFIX=/usr/local", f"BIN={binary}"],
        capture_output=True, text=True, timeout=60, env=env,
    )


def test_install_copies_what_make_built(tmp_path):
    run = make_install(tmp_path, FORKCHAT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "swift" not in run.stdout + run.stderr, "make install must not build"
    installed = tmp_path / "usr/local/bin/forkchat"
    version = subprocess.run([installed, "--version"], capture_output=True, text=True, timeout=10)
    assert version.returncode == 0 and version.stdout.startswith("forkchat "), version
    assert (tmp_path / "usr/local/share/man/man1/forkchat.1").read_bytes().startswith(b".TH FORKCHAT 1")


def test_install_without_a_build_fails_clearly(tmp_path):
    missing = tmp_path / "not-built" / "forkchat"
    run = make_install(tmp_path / "root", missing)
    assert run.returncode != 0
    assert f"make install: {missing} is not built: run 'make' first" in run.stderr, run.stderr
    assert not (tmp_path / "root").exists(), "nothing is installed"
