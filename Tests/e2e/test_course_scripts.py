"""forkchat against the course's own Python scripts (Tests/course/, written
the way the lab sheets write them), in both roles, through real
pseudo-terminals, and --line-end, which lets forkchat speak their protocol:
each message sent without an ending (input() + sendall()), "exit" exactly.

- client.py -> forkchat listen: the script's messages have no newline;
- forkchat connect --line-end none -> serveur.py / serveur2.py: "exit"
  ends the script cleanly;
- the sheet's serveur.py bug, kept on purpose (docs/course.md, Q3): with
  forkchat's default "exit\\n" it never stops, and after the close it loops
  on recv() == b""; serveur_corrige.py is the fix;
- --line-end lf|crlf|none changes only lines typed on a terminal, in every
  mode; the quit word works with each; a pipe's bytes go as they are.
"""

import re
import signal
import sys
import time
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


def script(name, *args, stdin="pty", stdout=None):
    """A course script, run as a student runs it (a terminal, unless said)."""
    return Proc([sys.executable, COURSE / name, *map(str, args)], stdin=stdin, stdout=stdout, name=name)


def script_server(name, stdout=None):
    port = free_port()
    server = script(name, port, stdin="pty" if stdout is None else "devnull", stdout=stdout)
    server.wait_out(rf"Serveur en attente sur le port {port}\n")
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


# --- forkchat connect -> the sheet's servers ---------------------------------


@pytest.mark.parametrize("name", ["serveur.py", "serveur_corrige.py"])
def test_exit_ends_the_sheet_server_with_line_end_none(name):
    server, port = script_server(name)
    fc = connect_to(port, "--line-end", "none")
    server.wait_out(r"Connexion de \('127\.0\.0\.1', \d+\)\n")
    typed(fc, b"bonjour")
    server.wait_out("Reçu : bonjour\n")
    typed(fc, "ça va ?".encode())
    server.wait_out("Reçu : ça va \\?\n")
    typed(fc, b"exit")  # the quit word: sent as "exit", then FIN
    server.wait_out("Reçu : exit\nFin de la conversation\n")
    server.assert_exit(0)
    fc.wait_err(rf"forkchat: 127\.0\.0\.1 port {port} closed the connection\n")
    fc.assert_exit(0)
    assert "Reçu :" not in server.out_text().split("Reçu : exit")[1], "nothing after exit" + server.describe()


def test_the_sheet_server_loops_on_empty_recv_after_the_close():
    # forkchat's default sends "exit\n", never equal to "exit"; once forkchat
    # has gone, recv() returns b"" at once, for ever: the sheet's bug.
    server, port = script_server("serveur.py", stdout="pipe")
    fc = connect_to(port, "--linger", "0.2")
    typed(fc, b"exit")
    server.wait_out("Reçu : exit\n\n")
    fc.wait_err(r"did not close within 0\.2 s; closing\n")
    fc.assert_exit(0)
    start = time.monotonic()
    server.wait_out(rb"(Re\xc3\xa7u : \n){2000}", timeout=10)
    looping = time.monotonic() - start
    server.assert_running("(the sheet's server never stops)")
    server.signal(signal.SIGTERM)
    server.assert_signaled(signal.SIGTERM)
    assert b"Fin de la conversation" not in server.out_bytes()
    assert looping < 5, f"2000 empty messages took {looping:.1f} s"


def test_the_fixed_server_stops_at_exit_with_a_newline_and_at_the_close():
    server, port = script_server("serveur_corrige.py")
    fc = connect_to(port)  # default --line-end lf: "exit\n"
    typed(fc, b"exit")
    server.wait_out("Reçu : exit\n\nFin de la conversation\n")
    server.assert_exit(0)
    fc.assert_exit(0)
    # A client that leaves without "exit" (Ctrl-D): recv() == b"" ends it.
    server, port = script_server("serveur_corrige.py")
    fc = connect_to(port)
    typed(fc, b"bye")
    server.wait_out("Reçu : bye\n")
    fc.close_stdin()
    server.wait_out("Le client a fermé la connexion\nFin de la conversation\n")
    server.assert_exit(0)
    fc.assert_exit(0)


# --- the sheet's client -> forkchat listen ----------------------------------


def test_the_sheet_client_talks_to_forkchat_listen():
    port = free_port()
    fc = start_listener(port, stdin="pty")
    client = script("client.py", "127.0.0.1", port)
    client.wait_out(rf"Connecté à 127\.0\.0\.1 port {port}\n")
    client.wait_err("Message : ")  # input() on a terminal prompts on stderr
    fc.wait_err(r"forkchat: connection from 127\.0\.0\.1 port \d+\n")
    client.type(b"bonjour\n")
    # No newline on the wire: forkchat still gives the message its own line.
    fc.wait_out(rb"< bonjour\n")
    client.wait_err("Message : Message : ")
    client.type(b"exit\n")
    fc.wait_out(rb"< exit\n")
    client.wait_out("Fin de la conversation\n")
    client.assert_exit(0)
    fc.wait_err(r"forkchat: 127\.0\.0\.1 port \d+ closed the connection\n")
    fc.assert_exit(0)


# --- the threaded server: both ways at once ----------------------------------


@pytest.mark.parametrize("who", ["forkchat", "script"], ids=["forkchat-says-exit", "script-says-exit"])
def test_the_threaded_server_both_ways(who):
    server, port = script_server("serveur2.py")
    fc = connect_to(port, "--line-end", "none")
    server.wait_out(r"Connexion de \('127\.0\.0\.1', \d+\)\n")
    # threading threads are OS threads: main, reception and emission.
    wait_until(lambda: len(threads_of(server.pid)) == 3)
    assert len(threads_of(server.pid)) == 3, f"threads of serveur2.py: {threads_of(server.pid)}"
    typed(fc, b"salut")
    server.wait_out("Reçu : salut\n")
    server.type(b"bonjour\n")
    fc.wait_out(rb"< bonjour\n")
    if who == "forkchat":
        typed(fc, b"exit")
        server.wait_out("Reçu : exit\nFin de la conversation\n")
    else:
        server.type(b"exit\n")  # sent, then shutdown(SHUT_WR)
        fc.wait_out(rb"< exit\n")
        fc.wait_err(r"closed the connection\n")  # forkchat, on a terminal, ends at the FIN
        server.wait_out("Le client a fermé la connexion\nFin de la conversation\n")
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
