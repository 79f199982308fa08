"""make deb and make dist: what a lab machine without Swift gets.

- the package: its control file (no Depends: the binary is static), its
  files, the binary stripped and without a dynamic section;
- installed by dpkg into an empty root (a machine with nothing installed),
  and what `apt install ./forkchat_VERSION_ARCH.deb` would do (apt-get -s);
- the packaged binary run with no toolchain: env -i, LD_LIBRARY_PATH empty,
  /opt/swift hidden under a tmpfs in a mount namespace of its own, chatting
  with a peer;
- the tarball of make dist: the same binary and the man page.
"""

import os
import re
import shutil
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness import FORKCHAT, Proc, free_port, listen_socket

ROOT = Path(__file__).resolve().parent.parent.parent
TOOLCHAIN = "/opt/swift"


def tool(name):
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """make deb dist, once, with the binary under test, into a directory."""
    tool("dpkg-deb")
    out = tmp_path_factory.mktemp("packages")
    run = subprocess.run(
        ["make", "-C", str(ROOT), "deb", "dist", f"OUT={out}", f"BIN={os.path.relpath(FORKCHAT, ROOT)}"],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    debs = list(out.glob("forkchat_*_*.deb"))
    tarballs = list(out.glob("forkchat-*-linux-*.tar.gz"))
    assert len(debs) == 1 and len(tarballs) == 1, list(out.iterdir())
    return debs[0], tarballs[0]


def field(deb, name):
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def without_toolchain(binary, *args):
    """The argv that runs `binary` with no Swift anywhere: a mount namespace
    with a tmpfs over /opt/swift, an empty environment but PATH=/usr/bin:/bin."""
    assert os.geteuid() == 0, "unshare -m needs root"
    hide = f"mount -t tmpfs none {TOOLCHAIN} && " if os.path.isdir(TOOLCHAIN) else ""
    script = hide + 'test -z "$(ls -A /opt/swift 2>/dev/null)" && exec env -i LD_LIBRARY_PATH= PATH=/usr/bin:/bin "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", str(binary), *map(str, args)]


def test_deb_control_and_files(packages):
    deb, _ = packages
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    version = re.search(r'let version = "forkchat (.*)"', (ROOT / "Sources/ForkChatCommand/OptionTable.swift").read_text())[1]
    assert deb.name == f"forkchat_{version}_{arch}.deb"
    assert field(deb, "Package") == "forkchat"
    assert field(deb, "Version") == version
    assert field(deb, "Architecture") == arch
    # The binary is static: it needs nothing, and says so.
    assert field(deb, "Depends") == ""
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    files = {line.split()[-1] for line in listing.splitlines()}
    for path in ["./usr/bin/forkchat", "./usr/share/man/man1/forkchat.1.gz", "./usr/share/doc/forkchat/guide.md"]:
        assert path in files, listing
    # The lab's files: the sheet, the book and their diagrams; the course
    # sheet's scripts and the skeletons that students copy (docs/fr/tp.md).
    doc = "./usr/share/doc/forkchat/"
    kit = [doc + "fr/tp.md", doc + "fr/enseignant.md", doc + "fr/diagrams/processus-descripteurs.svg"]
    kit += [doc + "tp/" + p.name for p in (ROOT / "docs/fr/tp").glob("*.py")]
    kit += [doc + "tp/" + name for name in ("serveur.py", "client.py", "serveur2.py", "client2.py")]
    assert len(kit) > 8
    for path in kit:
        assert path in files, (path, listing)
    assert all(line.split()[1] == "root/root" for line in listing.splitlines())


def test_packaged_binary_is_static_and_stripped(packages, tmp_path):
    deb, _ = packages
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    binary = tmp_path / "usr/bin/forkchat"
    dynamic = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True).stdout
    assert "There is no dynamic section" in dynamic
    sections = subprocess.run(["readelf", "-S", str(binary)], capture_output=True, text=True).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections
    assert binary.stat().st_size < os.path.getsize(FORKCHAT)
    # Its debug symbols are kept beside the package, named by a debuglink.
    assert ".gnu_debuglink" in sections
    assert list(deb.parent.glob("forkchat_*.debug"))


def test_deb_installs_on_a_machine_with_nothing(packages, tmp_path):
    deb, _ = packages
    root = tmp_path / "root"
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    (root / "var/lib/dpkg/updates").mkdir()
    (root / "var/lib/dpkg/status").write_text("")
    run = subprocess.run(
        ["dpkg", f"--root={root}", "--log=/dev/null", "--force-script-chrootless", "-i", str(deb)],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Status: install ok installed" in (root / "var/lib/dpkg/status").read_text()
    assert (root / "usr/bin/forkchat").is_file()
    if shutil.which("apt-get"):
        sim = subprocess.run(["apt-get", "install", "-s", str(deb)], capture_output=True, text=True, timeout=120)
        assert sim.returncode == 0, sim.stdout + sim.stderr
        installs = [l for l in sim.stdout.splitlines() if l.startswith("Inst ")]
        assert len(installs) == 1 and installs[0].startswith("Inst forkchat"), sim.stdout


def test_packaged_binary_chats_without_the_toolchain(packages, tmp_path):
    deb, _ = packages
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    binary = tmp_path / "usr/bin/forkchat"
    version = Proc(without_toolchain(binary, "--version"), stdin="devnull", name="forkchat")
    assert version.wait(20) == 0, version.describe()
    assert version.out_text().startswith("forkchat ")
    port = free_port()
    listener = listen_socket(port)
    chat = Proc(without_toolchain(binary, "connect", "127.0.0.1", port), stdin="pipe", name="forkchat")
    listener.settimeout(10)
    peer, _ = listener.accept()
    peer.settimeout(10)
    chat.send(b"bonjour sans swift\n")
    got = b""
    while b"\n" not in got:
        got += peer.recv(100)
    assert got == b"bonjour sans swift\n"
    peer.sendall(b"salut\n")
    chat.wait_out_bytes(b"salut\n")
    chat.close_stdin()
    peer.settimeout(10)
    assert peer.recv(100) == b""
    peer.close()
    assert chat.wait(20) == 0, chat.describe()


def test_dist_tarball_has_the_binary_and_man_page(packages, tmp_path):
    _, tarball = packages
    top = tarball.name[: -len(".tar.gz")]
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        assert {f"{top}/bin/forkchat", f"{top}/share/man/man1/forkchat.1"} <= names, names
        assert all(m.uid == 0 and m.gid == 0 for m in archive.getmembers())
        archive.extractall(tmp_path, filter="tar")
    binary = tmp_path / top / "bin/forkchat"
    assert os.access(binary, os.X_OK)
    help_run = Proc(without_toolchain(binary, "check", "--help"), stdin="devnull", name="forkchat")
    assert help_run.wait(20) == 0, help_run.describe()
    assert "USAGE: forkchat check <role>" in help_run.out_text()
    assert (tmp_path / top / "share/man/man1/forkchat.1").read_text().startswith(".")
