"""forkchat against the course's own Python scripts, in both roles,
through real pseudo-terminals, and --line-end, which lets forkchat speak
their protocol: each message sent without an ending (input() + sendall()),
"exit" exactly.

Tests/course/serveur.py, client.py, serveur2.py and client2.py are the
scripts of the sheet "Communication interprocessus" exactly as it writes
them: 'localhost', port 12345, .lower(), no SO_REUSEADDR. A test runs a
copy in which only the number 12345 is replaced by a free port (tests never
use fixed ports). serveur_corrige.py and client_corrige.py are the corrected
copies. What the lab sheet (docs/fr/tp.md, part 1) shows of them is checked
here: the tracebacks of "the server started twice", "the client before the
server" and "restarting the server at once", the sheet server's endless
loop once its client has gone, and the corrected copies' answers.
"""

import re
import signal
import sys
from pathlib import Path

import pytest

from harness import (
    Forkchat,
    Proc,
    free_port,
    start_chat,
    start_listener,
    threads_of,
    wait_until,
)

COURSE = Path(__file__).resolve().parent.parent / "course"
ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "none": b""}
SHEET = {  # the lines that make each script the sheet's, and its port line
    "serveur.py": ["hote = 'localhost'", "port = 12345", 'if message.lower() == "exit":'],
    "client.py": ["client.connect(('localhost', 12345))", 'if message.lower() == "exit":'],
    "serveur2.py": ["serveur.bind(('localhost', 12345))", "serveur.listen(1)"],
    "client2.py": ["client.connect(('localhost', 12345))"],
}


def test_the_scripts_are_the_sheets():
    for name, lines in SHEET.items():
        text = (COURSE / name).read_text()
        for line in lines:
            assert line in text, f"{name}: the sheet writes {line!r}"
        assert text.count("12345") == 1, name
        assert "SO_REUSEADDR" not in text and "sys.argv" not in text, f"{name}: not as the sheet writes it"
    for name in ("serveur_corrige.py", "client_corrige.py"):
        assert "CORRECTION" in (COURSE / name).read_text()


def sheet_copy(tmp_path, name, port):
    """The sheet's script with only its port changed (the sheet has no argument)."""
    target = tmp_path / name
    target.write_text((COURSE / name).read_text().replace("12345", str(port)))
    return target


def script(path, *args, stdin="pty", stdout=None):
    """A course script, run as a student runs it (a terminal, unless said)."""
    path = Path(path)
    return Proc([sys.executable, path, *map(str, args)], stdin=stdin, stdout=stdout, name=path.name)


def sheet_server(tmp_path, name="serveur.py", stdout=None, port=None):
    port = port or free_port()
    server = script(sheet_copy(tmp_path, name, port), stdin="pty" if stdout is None else "devnull", stdout=stdout)
    server.wait_out(r"\[Serveur\] En attente de connexion\.\.\.\r?\n")
    return server, port


def connect_to(port, *args):
    fc = Forkchat("connect", "127.0.0.1", str(port), *args, stdin="pty")
    fc.wait_err(rf"forkchat: connected to 127\.0\.0\.1 port {port}\n")
    return fc


def typed(fc, line: bytes):
    """Types a line once the previous ones are on the screen (the terminal
    echoes them): without an ending, two lines typed at once would reach
    the script as one message."""
    fc.type(line + b"\n")
    fc.wait_out(re.escape(line) + rb"\n")


# --- the sheet's serveur.py ---------------------------------------------------


def test_exit_ends_the_sheet_server_with_line_end_none(tmp_path):
    server, port = sheet_server(tmp_path)
    fc = connect_to(port, "--line-end", "none")
    server.wait_out(r"\[Serveur\] Connexion de \('127\.0\.0\.1', \d+\)\r?\n")
    typed(fc, b"bonjour")
    server.wait_out(r"\[Client\] bonjour\r?\n")
    typed(fc, "ça va ?".encode())
    server.wait_out(r"\[Client\] ça va \?\r?\n")
    typed(fc, b"EXIT")  # .lower(): EXIT ends it too
    server.wait_out(r"\[Serveur\] Fin de la communication\.\r?\n")
    server.assert_exit(0)
    fc.wait_err(rf"forkchat: 127\.0\.0\.1 port {port} closed the connection\n")
    fc.assert_exit(0)


def test_the_sheet_server_started_twice(tmp_path):
    first, port = sheet_server(tmp_path)
    second = script(tmp_path / "serveur.py")
    second.assert_exit(1)
    out = second.err_text()
    assert "Traceback (most recent call last):\n" in out, second.describe()
    assert re.search(r'File ".*serveur\.py", line 8, in <module>\n    serveur\.bind\(\(hote, port\)\)\n', out), out
    assert out.endswith("OSError: [Errno 98] Address already in use\n"), out
    first.signal(signal.SIGINT)  # Ctrl-C: KeyboardInterrupt in accept()
    first.wait_err("KeyboardInterrupt")
    first.assert_signaled(signal.SIGINT)  # Python ends with SIGINT itself after the traceback


def test_the_sheet_client_before_the_server(tmp_path):
    client = script(sheet_copy(tmp_path, "client.py", free_port()))
    client.assert_exit(1)
    out = client.err_text()
    assert re.search(r'File ".*client\.py", line 5, in <module>\n    client\.connect\(', out), out
    assert out.endswith("ConnectionRefusedError: [Errno 111] Connection refused\n"), out
    fixed = script(COURSE / "client_corrige.py", "localhost", free_port())
    fixed.assert_exit(1)
    assert re.fullmatch(r"\[Client\] Aucun serveur sur localhost port \d+\.\n", fixed.err_text()), fixed.describe()


@pytest.mark.parametrize("name", ["serveur.py", "serveur_corrige.py"])
def test_restarting_the_server_at_once_after_it_ended_first(tmp_path, name):
    # The server is stopped (Ctrl-C) while its client is connected: its side
    # of the connection stays (FIN-WAIT-2, then TIME-WAIT); without
    # SO_REUSEADDR the bind of the new server fails.
    port = free_port()
    if name == "serveur.py":
        start = lambda: script(sheet_copy(tmp_path, name, port))  # noqa: E731
    else:
        start = lambda: script(COURSE / name, port)  # noqa: E731
    server = start()
    server.wait_out(r"En attente de connexion")
    fc = connect_to(port, "--line-end", "none")
    server.wait_out(r"Connexion de")
    typed(fc, b"bonjour")
    server.wait_out(r"\[Client\] bonjour")
    server.signal(signal.SIGINT)
    server.assert_signaled(signal.SIGINT)
    again = start()
    if name == "serveur.py":
        again.assert_exit(1)
        assert again.err_text().endswith("OSError: [Errno 98] Address already in use\n"), again.describe()
    else:
        again.wait_out(r"\[Serveur\] En attente de connexion")
        again.signal(signal.SIGTERM)
        again.assert_signaled(signal.SIGTERM)
    fc.close_stdin()
    fc.wait(10)


def test_the_sheet_server_loops_once_its_client_has_gone(tmp_path):
    # The sheet's client ends with Ctrl-D: input() raises EOFError, Python
    # closes the socket, recv() returns b"" at once, for ever.
    server, port = sheet_server(tmp_path, stdout="pipe")
    client = script(sheet_copy(tmp_path, "client.py", port))
    client.wait_out("Tapez vos messages :")
    client.type(b"bonjour\n")
    server.wait_out("\\[Client\\] bonjour\n")
    client.type(b"\x04")  # Ctrl-D
    client.assert_exit(1)
    assert client.err_text().rstrip().endswith("EOFError"), client.describe()
    # 2000 empty messages and still running: recv() returns b"" in a loop
    # (no bound on how fast: a loaded machine is slower, the loop the same).
    server.wait_out(r"(\[Client\] \n){2000}", timeout=30)
    server.assert_running("(the sheet's server never stops)")
    server.signal(signal.SIGTERM)
    server.assert_signaled(signal.SIGTERM)


def test_the_fixed_server_stops_at_exit_with_a_newline_and_at_the_close():
    port = free_port()
    server = script(COURSE / "serveur_corrige.py", port)
    server.wait_out(r"\[Serveur\] En attente de connexion")
    fc = connect_to(port)  # default --line-end lf: "exit\n"
    typed(fc, b"exit")
    server.wait_out(r"\[Serveur\] Fin de la communication\.")
    server.assert_exit(0)
    fc.assert_exit(0)
    # A client that leaves without "exit" (Ctrl-D): recv() == b"" ends it.
    port = free_port()
    server = script(COURSE / "serveur_corrige.py", port)
    server.wait_out(r"\[Serveur\] En attente de connexion")
    fc = connect_to(port)
    typed(fc, b"bye")
    server.wait_out(r"\[Client\] bye")
    fc.close_stdin()
    server.wait_out(r"\[Serveur\] Le client a fermé la connexion\.")
    server.assert_exit(0)
    fc.assert_exit(0)


# --- the sheet's client -> forkchat listen ----------------------------------


def test_the_sheet_client_talks_to_forkchat_listen(tmp_path):
    port = free_port()
    fc = start_listener(port, stdin="pty")
    client = script(sheet_copy(tmp_path, "client.py", port))
    client.wait_out(r"\[Client\] Connecté au serveur\. Tapez vos messages :")
    fc.wait_err(r"forkchat: connection from 127\.0\.0\.1 port \d+\n")
    client.type(b"bonjour\n")
    # No newline on the wire: forkchat still gives the message its own line.
    fc.wait_out(rb"< bonjour\n")
    client.type(b"exit\n")
    fc.wait_out(rb"< exit\n")
    client.assert_exit(0)
    fc.wait_err(r"forkchat: 127\.0\.0\.1 port \d+ closed the connection\n")
    fc.assert_exit(0)


# --- the sheet's threaded server: both ways at once --------------------------


def test_the_sheet_threaded_server_both_ways(tmp_path):
    server, port = sheet_server(tmp_path, "serveur2.py")
    fc = connect_to(port, "--line-end", "none")
    server.wait_out(r"\[Serveur\] Connecté à \('127\.0\.0\.1', \d+\)")
    # threading threads are OS threads: main, recevoir and envoyer.
    wait_until(lambda: len(threads_of(server.pid)) == 3)
    assert len(threads_of(server.pid)) == 3, f"threads of serveur2.py: {threads_of(server.pid)}"
    typed(fc, b"salut")
    server.wait_out(r"\[Client\] salut")
    server.type(b"bonjour\n")
    fc.wait_out(rb"< bonjour\n")
    typed(fc, b"exit")  # the reader thread ends; envoyer still waits in input()
    server.wait_out(r"\[Client\] a quitté la conversation\.")
    server.assert_running("(thread2.join(): envoyer still waits for the keyboard)")
    server.type(b"exit\n")
    server.assert_exit(0)
    fc.assert_exit(0)


# --- --line-end against a raw peer -------------------------------------------


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("mode", ["default", "threads", "poll"])
def test_typed_lines_end_as_asked_and_the_quit_word_still_works(mode, ending):
    chat = start_chat("connect", "pty", "--line-end", ending, mode=mode)
    end = ENDINGS[ending]
    chat.fc.type(b"hello\n")
    chat.peer.expect(b"hello" + end)
    chat.fc.type(b"exit\n")
    chat.peer.expect(b"exit" + end)
    chat.peer.expect_eof(what="(the quit word ends forkchat's sending)")
    chat.peer.close()
    chat.fc.assert_exit(0)


def test_alternate_mode_speaks_the_scripts_protocol():
    chat = start_chat("connect", "pty", "--mode", "alternate", "--line-end", "none")
    chat.fc.type(b"hello\n")
    chat.peer.expect(b"hello")
    chat.peer.send(b"hi")  # as the scripts answer: no newline
    chat.fc.wait_out(rb"< hi\n")
    chat.fc.type(b"exit\n")
    chat.peer.expect(b"exit")
    chat.peer.expect_eof()
    chat.peer.close()
    chat.fc.assert_exit(0)


@pytest.mark.parametrize("mode", ["default", "threads", "poll", "alternate"])
def test_piped_input_is_sent_as_it_is(mode):
    chat = start_chat("connect", "pipe", "--line-end", "none", mode=mode)
    data = b"a line\nexit\nno newline at the end"
    chat.fc.feed(data)
    if mode == "alternate":  # one line, then the peer's turn
        chat.peer.expect(b"a line\n")
        chat.peer.send(b"ok\n")
        chat.peer.expect(b"exit\n")
        chat.peer.send(b"ok\n")
        chat.peer.expect(b"no newline at the end")
        chat.peer.send(b"ok\n")  # its send turn again: input has ended, FIN
    else:
        chat.peer.expect(data)
    chat.peer.expect_eof()
    chat.peer.close()
    chat.fc.assert_exit(0)
