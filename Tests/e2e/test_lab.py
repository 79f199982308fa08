"""The two-hour lab: the student's sheet (docs/fr/tp.md, English
docs/lab.md), the teacher's book (docs/fr/enseignant.md, docs/teacher.md),
the skeletons the students complete (docs/fr/tp/) and their solutions
(Tests/course/solutions/).

- every output block fits a projector: at most 80 columns, no escape codes;
- the sheet has questions and no answers; the book answers each question;
- the skeletons are valid Python, say what is to be completed, and run;
  the solutions are what the skeletons become;
- the experiments the sheet shows are run here on the real programs: two
  send() calls arriving as one recv() over TCP and two over UDP; the fork
  solution against forkchat (half-close, no zombie, no orphan);
- every solution passes `forkchat check`, every check it should face; every
  skeleton, as given, runs, starts, and fails it at the exchange.
"""

import ast
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness import FORKCHAT, Forkchat, Proc, children_of, free_port, start_listener, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
SHEET = ROOT / "docs" / "fr" / "tp.md"
BOOK = ROOT / "docs" / "fr" / "enseignant.md"
DOCS = [SHEET, BOOK, ROOT / "docs" / "lab.md", ROOT / "docs" / "teacher.md"]
SKELETONS = ROOT / "docs" / "fr" / "tp"
SOLUTIONS = ROOT / "Tests" / "course" / "solutions"
PROGRAMS = sorted(p.name for p in SOLUTIONS.glob("q*.py"))


def blocks(path):
    return re.findall(r"^```[^\n]*\n(.*?)^```", path.read_text(), re.M | re.S)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_block_fits_a_projector(path):
    for block in blocks(path):
        for line in block.splitlines():
            assert len(line) <= 80, f"{path.name}: {len(line)} columns: {line}"
            assert "\x1b" not in line and "\\x1b" not in line and "\\33[" not in line, f"{path.name}: {line}"


def questions(path, word):
    return re.findall(rf"\*\*{word} \(([0-9E.]+)\)", path.read_text())


def test_the_sheet_asks_and_the_book_answers_every_question():
    asked = questions(SHEET, "À vous")
    assert len(asked) >= 20, asked
    assert len(set(asked)) == len(asked), asked
    answered = re.findall(r"^\*\*([0-9E.]+)\.\*\*", BOOK.read_text(), re.M)
    assert [a.rstrip(".") for a in asked] == [a.rstrip(".") for a in answered]
    sheet = SHEET.read_text()
    for word in ("Réponse", "Solution", "Corrigé"):
        assert word not in sheet, f"the sheet gives answers ({word})"


def test_the_sheet_has_its_plan_and_the_core_path_before_the_extensions():
    text = SHEET.read_text()
    for heading in ("## Objectifs", "## Prérequis", "## Plan de la séance", "## Partie 1", "## Partie 4", "## Extensions"):
        assert heading in text, heading
    assert text.index("## Partie 4") < text.index("## Extensions")
    minutes = [int(m) for m in re.findall(r"^\| (\d+) min \|", text, re.M)]
    assert sum(minutes) == 120, minutes
    assert "Résultat attendu :" in text and "Ce que vous voyez" not in text


def test_the_sheet_names_every_skeleton_and_the_book_every_solution():
    sheet, book = SHEET.read_text(), BOOK.read_text()
    for name in PROGRAMS:
        assert (SKELETONS / name).is_file(), f"no skeleton for {name}"
        assert name in sheet, f"tp.md never mentions {name}"
        assert f"`{name}`" in book, f"enseignant.md never mentions {name}"
    assert {p.name for p in SKELETONS.glob("q*.py")} == set(PROGRAMS)


@pytest.mark.parametrize("name", PROGRAMS)
def test_each_skeleton_is_valid_incomplete_python_and_the_solution_complete(name):
    skeleton = (SKELETONS / name).read_text()
    solution = (SOLUTIONS / name).read_text()
    ast.parse(skeleton, name)
    ast.parse(solution, name)
    assert "À COMPLÉTER" in skeleton and "À COMPLÉTER" not in solution
    # The skeleton keeps the solution's title, usage and arguments.
    for text in (skeleton, solution):
        assert re.search(r"sys\.argv\[1\]\)? if len\(sys\.argv\) > 1", text), name
    usage = re.compile(r"^# Usage : .*$", re.M)
    assert usage.findall(skeleton) == usage.findall(solution)
    assert solution.splitlines()[0] == skeleton.splitlines()[0]


def test_tcp_joins_two_sends_and_udp_keeps_them_apart():
    # deux_envois.py as the sheet runs it (E5), against a receiver that
    # counts its recv() calls, as strace shows nc's read() calls.
    script = SKELETONS / "deux_envois.py"
    port = free_port()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    server.settimeout(10)
    subprocess.run([sys.executable, script, "tcp", str(port)], check=True, timeout=10)
    conn, _ = server.accept()
    conn.settimeout(10)
    got = []
    while data := conn.recv(16384):
        got.append(data)
    conn.close()
    server.close()
    assert got == [b"premier envoi\nsecond envoi\n"], got

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    udp.settimeout(10)
    subprocess.run([sys.executable, script, "udp", str(port)], check=True, timeout=10)
    got = [udp.recv(16384), udp.recv(16384)]
    udp.close()
    assert got == [b"premier envoi\n", b"second envoi\n"], got


def solution(name, *args):
    return Proc([sys.executable, SOLUTIONS / name, *map(str, args)], stdin="pty", name=name)


@pytest.mark.parametrize("name", ["q4_client_fork.py", "q5_client_threads.py"])
def test_the_solution_against_cat_into_forkchat_listen(name):
    # Part 4 of the sheet: `cat | forkchat listen 8080` in A, the client in
    # B; B's Ctrl-D half-closes, A's lines still reach B, no zombie; A's
    # Ctrl-D ends both, leaving nothing behind.
    port = free_port()
    a = start_listener(port, stdin="pipe")
    b = solution(name, "localhost", port)
    b.wait_out(rf"Connecté à localhost port {port}\r?\n")
    a.wait_err(r"forkchat: connection from 127\.0\.0\.1 port \d+\n")
    b.type(b"bonjour de B\n")
    a.wait_out(r"bonjour de B\n")
    a.send(b"salut B, ici A\n")
    b.wait_out(r"salut B, ici A\r?\n")
    b.type(b"\x04")  # Ctrl-D: FIN
    a.wait_err(r"closed the connection\n")
    if name == "q4_client_fork.py":
        wait_until(lambda: not children_of(b.pid), what="the son, waited for")
    a.send("tu me lis encore ?\n".encode())
    b.wait_out(r"tu me lis encore \?\r?\n")
    a.close_stdin()
    b.assert_exit(0)
    a.assert_exit(0)


def has_check():
    run = subprocess.run([FORKCHAT, "help"], capture_output=True, text=True, timeout=10)
    return re.search(r"^\s+check\s", run.stdout, re.M) is not None


# --- forkchat check on the solutions and on the skeletons ----------------------

CHECKED = {  # program: (role, exercise, extra options)
    "q3_client_alterne.py": ("client", "alternate", []),
    "q3_serveur_alterne.py": ("server", "alternate", []),
    "q4_client_fork.py": ("client", "fork", ["--quit", "exit"]),
    "q4_serveur_fork.py": ("server", "fork", []),
    "q5_client_threads.py": ("client", "threads", []),
}


def run_check(path, role, exercise, options=()):
    """`forkchat check` on a program, as the sheet runs it, on a port of its
    own (the program takes it as its argument); returns (status, results)."""
    port = free_port()
    args = ["localhost", str(port)] if role == "client" else [str(port)]
    command = [FORKCHAT, "check", role, "--port", str(port), "--exercise", exercise, *options, "--json",
               "--", sys.executable, str(path), *args]
    run = subprocess.run(command, capture_output=True, text=True, timeout=150)
    assert run.returncode in (0, 1), f"{command}: {run.returncode}\n{run.stdout}\n{run.stderr}"
    results = json.loads(run.stdout)
    return run.returncode, {c["name"]: c for c in results["checks"]}


def test_check_is_there_and_every_checked_program_is_named():
    assert has_check(), "forkchat has no check subcommand"
    assert set(CHECKED) == {n for n in PROGRAMS if n[:2] in ("q3", "q4", "q5")}


@pytest.mark.parametrize("name", list(CHECKED))
def test_the_solution_passes_forkchat_check(name):
    role, exercise, options = CHECKED[name]
    status, checks = run_check(SOLUTIONS / name, role, exercise, options)
    failed = {k: v["detail"] for k, v in checks.items() if not v["passed"]}
    assert status == 0 and not failed, f"{name}: {failed}"
    expected = {"starts", "exchange", "full-duplex", "half-close", "no-zombie", "peer-ends", "no-newline", "large-message"}
    if role == "server":
        expected.add("restart")
    if options:
        expected.add("quit-word")
    assert set(checks) == expected, sorted(checks)


@pytest.mark.parametrize("name", list(CHECKED))
def test_the_skeleton_as_given_runs_and_fails_forkchat_check(name):
    # As given, a skeleton starts (it connects or accepts: that part is
    # written), then fails at the exchange: the part to complete is missing.
    role, exercise, options = CHECKED[name]
    status, checks = run_check(SKELETONS / name, role, exercise)
    assert status == 1
    assert checks["starts"]["passed"], checks["starts"]
    assert not checks["exchange"]["passed"], checks["exchange"]


# --- parts 2 and 3 of the sheet, as it runs them ------------------------------


def connect_plain(port, *args):
    fc = Forkchat("connect", "localhost", str(port), "--plain", *args, stdin="pty")
    fc.wait_err(rf"forkchat: connected to 127\.0\.0\.1 port {port}\n")
    return fc


def test_part2_q1_server_prints_what_forkchat_sends():
    port = free_port()
    server = Proc([sys.executable, SOLUTIONS / "q1_serveur.py", port], stdin="pty", name="q1_serveur.py")
    server.wait_out(rf"Serveur en attente sur le port {port}\r?\n")
    fc = connect_plain(port)
    server.wait_out(r"Connexion de \('127\.0\.0\.1', \d+\)\r?\n")
    fc.type("bonjour, ici B\n".encode())
    fc.type("deuxième ligne\n".encode())
    server.wait_out(r"bonjour, ici B\r?\ndeuxième ligne\r?\n")
    fc.close_stdin()
    server.wait_out(r"Le client a fermé la connexion\r?\n")
    server.assert_exit(0)
    fc.wait_err(rf"forkchat: 127\.0\.0\.1 port {port} closed the connection\n")
    fc.assert_exit(0)


def test_part2_q2_client_closing_with_unread_data_resets_the_connection():
    # 2.3: the client never reads; A's line waits unread when it closes, and
    # the kernel sends RST instead of FIN.
    port = free_port()
    a = start_listener(port, "--plain", stdin="pty")
    b = Proc([sys.executable, SOLUTIONS / "q2_client.py", "localhost", port], stdin="pty", name="q2_client.py")
    b.wait_out(rf"Connecté à localhost port {port}\r?\n")
    a.wait_err(r"forkchat: connection from 127\.0\.0\.1 port \d+\n")
    b.type(b"salut A\n")
    a.wait_out(r"< salut A\n")
    a.type("ça ne s'affichera pas chez B\n".encode())

    def unread_at_b():
        ss = subprocess.run(["ss", "-tnH", f"dport = :{port}"], capture_output=True, text=True, timeout=10)
        return any(r.split()[1] != "0" for r in ss.stdout.splitlines() if r.startswith("ESTAB"))

    wait_until(unread_at_b, what="A's line waiting, unread, in B's receive queue")
    b.close_stdin()
    b.assert_exit(0)
    a.wait_err(r"forkchat: read from 127\.0\.0\.1 port \d+: Connection reset by peer\n")
    a.wait(10)
    assert "ça ne s'affichera pas" not in b.out_text()


def test_part3_both_waiting_is_a_deadlock():
    # 3.1: the alternating server waits for the client's line, forkchat
    # --first receive for the server's: both sleep in the kernel, nothing in
    # either receive queue.
    port = free_port()
    server = Proc([sys.executable, SOLUTIONS / "q3_serveur_alterne.py", port], stdin="pty", name="q3_serveur_alterne.py")
    server.wait_out(rf"Serveur en attente sur le port {port}\r?\n")
    fc = connect_plain(port, "--mode", "alternate", "--first", "receive")
    server.wait_out(r"Connexion de")
    fc.type(b"personne ne lit\n")

    def state(pid):
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    wait_until(lambda: state(server.pid) == "S" and state(fc.pid) == "S", what="both asleep")
    # Still both asleep once forkchat has echoed the typed line: nobody sends.
    fc.wait_out(r"personne ne lit\r?\n")
    assert state(server.pid) == "S" and state(fc.pid) == "S"
    ss = subprocess.run(["ss", "-tnH", f"sport = :{port} or dport = :{port}"], capture_output=True, text=True, timeout=10)
    rows = [line.split() for line in ss.stdout.splitlines() if line.startswith("ESTAB")]
    assert len(rows) == 2 and all(r[1] == "0" and r[2] == "0" for r in rows), ss.stdout
    fc.signal(signal.SIGINT)  # Ctrl-C in B
    server.assert_exit(0)  # its recevoir() returns b"": the client has gone
    fc.wait(10)
