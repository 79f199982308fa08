"""The chat screen, as a person sees it: forkchat runs in a tmux window
(terminal.py) with an interactive bash, against a raw Python peer or a
second forkchat in another window; the tests type keys and read the rows
tmux shows. Covers: a line arriving while one is half typed, every ending
of the teardown table at a terminal (terminal settings restored, nothing
typed reaches the shell, the screen scrolls normally after, exit codes, no
process left), resize, Ctrl-Z / jobs / fg, the editing keys, a 300-character
line, a paste of 50 lines, what a peer sends to take over the terminal,
--plain, and two screens typing at once."""

import os
import re
import signal
import time

import pytest

from harness import Peer, free_port, listen_socket, mode_args
from terminal import Terminal

MODES = ["default", "threads", "poll"]


@pytest.fixture
def term():
    t = Terminal(columns=80, rows=24)
    try:
        yield t
    finally:
        t.close()


def status_row(rows):
    return rows[-2]


def input_row(rows):
    return rows[-1]


def connect(term, *args, plain=False):
    """Starts `forkchat connect` in the window against a Python peer,
    after saving `stty -g`; returns the peer once the chat is up."""
    port = free_port()
    server = listen_socket(port)
    term.run(f"stty -g > {term.dir}/before")
    extra = " ".join(args) + (" --plain" if plain else "")
    term.type(f'"$FORKCHAT" connect 127.0.0.1 {port} {extra}')
    term.keys("Enter")
    peer = Peer.accept(server)
    server.close()
    if plain:
        term.wait_screen(r"^forkchat: type a line", what="the plain chat's notice")
    else:
        term.wait_screen(rf"127\.0\.0\.1 port {port} · connected", what="the status row")
    return peer


def check_given_back(term, expected_status, leaked):
    """After the chat: Enter at the shell runs nothing that was typed for
    the peer; the exit status is as expected; `stty -g` reads as before;
    output scrolls the whole screen again (seq 1 40 ends just above the
    prompt)."""
    term.wait_screen(lambda rows: rows[term.cursor()[0] - 1] == "$", what="the shell's prompt")
    term.keys("Enter")
    status = term.exit_status()
    assert not os.path.exists(leaked), "text typed for the peer ran in the shell\n" + term.show()
    assert status == expected_status, f"exit status {status}, expected {expected_status}\n" + term.show()
    term.run(f"stty -g > {term.dir}/after")
    with open(f"{term.dir}/before") as before, open(f"{term.dir}/after") as after:
        assert before.read() == after.read(), "stty -g differs after the chat\n" + term.show()
    term.type("seq 1 40")
    term.keys("Enter")
    rows = term.wait_screen(lambda rows: rows[-1] == "$" and rows[-2] == "40", what="seq 1 40 above the prompt")
    assert rows[-3] == "39"
    assert term.wait_forkchat(0) == []


# --- both type at once --------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_half_typed_line_stays_whole_when_a_line_arrives(term, mode):
    peer = connect(term, *mode_args(mode))
    term.type("half typed li")
    peer.send(b"B interrupts while A types\n")
    rows = term.wait_screen(r"^127\.0\.0\.1: B interrupts while A types$")
    assert input_row(rows) == "> half typed li", term.show()
    assert term.cursor() == (24, 16)
    term.type("ne finished")
    term.keys("Enter")
    peer.expect(b"half typed line finished\n")
    rows = term.wait_screen(r"^you: half typed line finished$")
    # Each line on a row of its own, in order, above the status row.
    assert rows[-4:-2] == ["127.0.0.1: B interrupts while A types", "you: half typed line finished"], term.show()
    assert input_row(rows) == ">"
    term.keys("C-d")
    peer.expect_eof()
    peer.close()
    check_given_back(term, 0, f"{term.dir}/none")


def test_two_screens_typing_at_once():
    a, b = Terminal(columns=70, rows=16), Terminal(columns=70, rows=16)
    try:
        port = free_port()
        a.type(f'"$FORKCHAT" listen {port}')
        a.keys("Enter")
        a.wait_screen(r"listening on")
        b.type(f'"$FORKCHAT" connect 127.0.0.1 {port}')
        b.keys("Enter")
        a.wait_screen(r"· connected ·")
        b.wait_screen(r"· connected ·")
        # Both type at once, a character at a time, interleaved.
        for x, y in zip("from A to B", "from B to A"):
            a.type(x, pause=0)
            b.type(y, pause=0)
        b.wait_screen(r"^> from B to A$")
        a.wait_screen(r"^> from A to B$")
        a.keys("Enter", pause=0)
        b.type(" and more", pause=0)
        rows_b = b.wait_screen(r"^127\.0\.0\.1: from A to B$")
        assert input_row(rows_b) == "> from B to A and more", b.show()
        b.keys("Enter")
        rows_a = a.wait_screen(r"^127\.0\.0\.1: from B to A and more$")
        assert rows_a[-4:-2] == ["you: from A to B", "127.0.0.1: from B to A and more"], a.show()
        a.type("exit")
        a.keys("Enter")
        b.wait_screen(r"closed the connection")
        a.wait_screen(r"closed the connection")
        for t in (a, b):
            assert t.exit_status() == 0
            t.wait_forkchat(0)
    finally:
        a.close()
        b.close()


# --- every ending ---------------------------------------------------------------

def test_a_burst_can_be_read_back(term):
    """A hundred lines arriving at once (one read) are all drawn: those
    that scroll out of the conversation are in the terminal's scrollback,
    where a person scrolls back to read them."""
    peer = connect(term)
    peer.send(b"".join(b"burst %03d\n" % n for n in range(1, 101)))
    term.wait_screen(r"^127\.0\.0\.1: burst 100$")
    shown = [row for row in term.history() if re.fullmatch(r"127\.0\.0\.1: burst \d{3}", row)]
    assert shown == [f"127.0.0.1: burst {n:03d}" for n in range(1, 101)], "\n".join(term.history())
    peer.close()
    term.wait_forkchat(0)


def cpu_ticks(pid) -> int:
    """utime + stime of a process (/proc/PID/stat), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.parametrize("mode", ["default", "threads"])
def test_the_receiving_side_sleeps_while_it_lingers(term, mode):
    """Once the sending side is done (Ctrl-D), the pipe that brought its
    lines is at its end: the receiving side must stop watching it, or
    poll(2) returns at once for ever and the linger time is a busy loop."""
    peer = connect(term, "--linger", "3", *mode_args(mode))
    parent = term.wait_forkchat(2 if mode == "default" else 1)[0]
    term.keys("C-d")
    peer.expect_eof()
    term.wait_forkchat(1)
    before = cpu_ticks(parent)
    time.sleep(1.0)
    used = cpu_ticks(parent) - before
    assert used <= 10, f"the lingering process used {used} ticks of CPU in 1 s (a busy loop)\n" + term.show()
    peer.close()
    term.wait_forkchat(0)


ENDINGS = ["quit_word", "ctrl_d", "peer_closed", "reset", "ctrl_c", "sigterm", "sighup", "child_killed"]
STATUS = {"quit_word": 0, "ctrl_d": 0, "peer_closed": 0, "reset": 1, "ctrl_c": 130, "sigterm": 143, "sighup": 129, "child_killed": 1}


def end_chat(term, peer, ending, leaked):
    """Ends the chat the way `ending` says, with `touch LEAKED` typed and
    not sent at that moment."""
    pids = term.wait_forkchat(2)
    touch = f"touch {leaked}"
    if ending == "quit_word":
        term.type("exit")
        term.keys("Enter")
        peer.expect(b"exit\n")
        term.type(touch)
        peer.close()
    elif ending == "ctrl_d":
        term.keys("C-d")
        peer.expect_eof()
        term.type(touch)
        peer.close()
    elif ending == "child_killed":
        os.kill(pids[1], signal.SIGKILL)
        peer.expect_eof()
        term.type(touch)
        peer.send(b"still shown\n")
        term.wait_screen(r"still shown$")
        peer.close()
    else:
        term.type(touch)
        if ending == "peer_closed":
            peer.close()
        elif ending == "reset":
            peer.reset()
        elif ending == "ctrl_c":
            term.keys("C-c")
        else:
            os.kill(pids[0], signal.SIGTERM if ending == "sigterm" else signal.SIGHUP)


@pytest.mark.parametrize("ending", ENDINGS)
def test_every_ending_gives_the_terminal_back(term, ending):
    peer = connect(term)
    term.type("hello")
    term.keys("Enter")
    peer.expect(b"hello\n")
    end_chat(term, peer, ending, f"{term.dir}/leaked")
    check_given_back(term, STATUS[ending], f"{term.dir}/leaked")


@pytest.mark.parametrize("ending", ["quit_word", "peer_closed", "ctrl_c", "sigterm"])
def test_every_ending_gives_the_terminal_back_plain(term, ending):
    peer = connect(term, plain=True)
    end_chat(term, peer, ending, f"{term.dir}/leaked")
    check_given_back(term, STATUS[ending], f"{term.dir}/leaked")


@pytest.mark.parametrize("mode", ["threads", "poll"])
@pytest.mark.parametrize("ending", ["peer_closed", "ctrl_c"])
def test_endings_in_the_other_modes(term, mode, ending):
    peer = connect(term, *mode_args(mode))
    term.type(f"touch {term.dir}/leaked")
    if ending == "peer_closed":
        peer.close()
    else:
        term.keys("C-c")
    check_given_back(term, STATUS[ending], f"{term.dir}/leaked")


def test_notices_stand_on_their_own_rows(term):
    peer = connect(term)
    term.type("partial")
    peer.send(b"bye\n")
    peer.close()
    rows = term.wait_screen(r"^\$$")
    text = "\n".join(rows)
    assert re.search(r"^127\.0\.0\.1: bye\nforkchat: 127\.0\.0\.1 port \d+ closed the connection\n\$$", text, re.M), term.show()
    assert "partial" not in text
    check_given_back(term, 0, f"{term.dir}/none")


# --- the window changes -------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_resize_while_typing(term, mode):
    peer = connect(term, *mode_args(mode))
    for i in range(5):
        peer.send(b"line %d\n" % i)
    term.wait_screen(r"^127\.0\.0\.1: line 4$")
    term.type("typing along")
    for columns, rows in [(60, 16), (100, 30), (50, 12)]:
        term.resize(columns, rows)

        def laid_out(screen):
            return (
                len(screen) == rows
                and screen[-1] == "> typing along"
                and "· connected" in screen[-2]
                and screen[-3] == "127.0.0.1: line 4"
            )

        screen = term.wait_screen(laid_out, what=f"the layout at {columns}x{rows}")
        # No stale status or input row anywhere else.
        assert sum("· connected" in row for row in screen) == 1, term.show()
        assert sum(row.startswith(">") for row in screen) == 1, term.show()
        assert term.cursor() == (rows, 15)
    term.keys("Enter")
    peer.expect(b"typing along\n")
    peer.send(b"after the resizes\n")
    term.wait_screen(r"^127\.0\.0\.1: after the resizes$")
    peer.close()
    check_given_back(term, 0, f"{term.dir}/none")


@pytest.mark.parametrize("mode", MODES)
def test_ctrl_z_jobs_fg(term, mode):
    peer = connect(term, *mode_args(mode))
    peer.send(b"before\n")
    term.wait_screen(r"^127\.0\.0\.1: before$")
    term.type("half")
    term.keys("C-z")
    term.wait_screen(r"Stopped")
    # The terminal is the shell's again: its settings, normal scrolling.
    term.run(f"stty -g > {term.dir}/stopped")
    with open(f"{term.dir}/before") as before, open(f"{term.dir}/stopped") as stopped:
        assert before.read() == stopped.read(), term.show()
    term.run("jobs")
    assert any(re.search(r"\[1\]\+\s+Stopped", row) for row in term.screen()), term.show()
    peer.send(b"while stopped\n")
    term.type("fg")
    term.keys("Enter")
    rows = term.wait_screen(lambda rows: rows[-1] == "> half" and "· connected" in rows[-2], what="the screen again")
    rows = term.wait_screen(r"^127\.0\.0\.1: while stopped$")
    assert rows[-4:-2] == ["127.0.0.1: before", "127.0.0.1: while stopped"], term.show()
    term.type(" done")
    term.keys("Enter")
    peer.expect(b"half done\n")
    peer.send(b"reply\n")
    term.wait_screen(r"^127\.0\.0\.1: reply$")
    peer.close()
    check_given_back(term, 0, f"{term.dir}/none")


def test_ctrl_l_redraws(term):
    peer = connect(term)
    peer.send(b"kept\n")
    term.wait_screen(r"^127\.0\.0\.1: kept$")
    term.type("abc")
    # Another program scribbles on the terminal (as wall(1) would); Ctrl-L
    # draws the whole screen again.
    with open(term.pane("pane_tty"), "wb", buffering=0) as tty:
        tty.write(b"\x1b[5;1HSCRIBBLE\x1b[23;1Hjunk junk\x1b[24;1Hmore junk")
    term.wait_screen(r"SCRIBBLE")
    term.keys("C-l")
    rows = term.wait_screen(lambda rows: rows[-1] == "> abc" and rows[-3] == "127.0.0.1: kept" and "· connected" in rows[-2])
    assert not any("SCRIBBLE" in r or "junk" in r for r in rows), term.show()
    assert term.cursor() == (24, 6)
    peer.close()
    check_given_back(term, 0, f"{term.dir}/none")


# --- the input line -------------------------------------------------------------


def test_editing_keys(term):
    peer = connect(term)
    # Backspace over a multi-byte character, Left and insert, Home/End.
    term.type("cafés")
    term.keys("BSpace", "BSpace")
    term.type("e")
    term.keys("Left", "Left", "Left")
    term.type("X")
    term.keys("Home")
    term.type("[")
    term.keys("End")
    term.type("]")
    term.wait_screen(r"^> \[cXafe\]$")
    term.keys("Enter")
    peer.expect("[cXafe]\n".encode())
    # Wide characters: Backspace removes one character, two columns.
    term.type("漢字😀")
    term.keys("BSpace")
    term.wait_screen(r"^> 漢字$")
    assert term.cursor() == (24, 7)
    term.keys("Enter")
    peer.expect("漢字\n".encode())
    # Ctrl-W deletes the word before the cursor; Ctrl-U the line before it.
    term.type("one two three")
    term.keys("C-w")
    term.type("3")
    term.keys("Enter")
    peer.expect(b"one two 3\n")
    term.type("gone")
    term.keys("C-u")
    term.type("kept")
    term.keys("Enter")
    peer.expect(b"kept\n")
    # Up brings back the lines sent; Down goes forward to the draft.
    term.type("draft")
    term.keys("Up")
    term.wait_screen(r"^> kept$")
    term.keys("Up")
    term.wait_screen(r"^> one two 3$")
    term.keys("Down", "Down")
    term.wait_screen(r"^> draft$")
    term.keys("Up", "Up", "Enter")
    peer.expect(b"one two 3\n")
    # Ctrl-\ is off while the screen is up (its SIGQUIT would leave the
    # terminal as the screen had it): nothing happens.
    term.keys("C-\\")
    term.type("x")  # handled after Ctrl-\ (a SIGQUIT would come first): still there
    term.wait_screen(r"^> x$")
    assert len(term.wait_forkchat(2)) == 2
    term.keys("C-u", "C-d")
    peer.expect_eof()
    peer.close()
    check_given_back(term, 0, f"{term.dir}/none")


def test_a_300_character_line(term):
    peer = connect(term)
    line = "".join(chr(ord("a") + i % 26) for i in range(290)) + "0123456789"
    term.type(line)
    rows = term.wait_screen(r"0123456789$")
    assert input_row(rows) == "> " + line[-77:], term.show()
    term.keys("Home")
    rows = term.wait_screen(lambda rows: rows[-1] == "> " + line[:77])
    term.keys("End", "Enter")
    peer.expect(line.encode() + b"\n")
    rows = term.wait_screen(r"^  .*0123456789$")
    # "you: " and the line, on four rows of 80 columns.
    shown = rows[-6] + "".join(row[2:] for row in rows[-5:-2])
    assert shown == "you: " + line, term.show()
    peer.close()
    check_given_back(term, 0, f"{term.dir}/none")


def test_a_paste_of_50_lines(term):
    peer = connect(term)
    lines = [f"pasted line {i:02d} " + "x" * (i % 7) for i in range(50)]
    term.paste("\n".join(lines) + "\n")
    peer.expect(("\n".join(lines) + "\n").encode(), timeout=20)
    rows = term.wait_screen(r"^you: pasted line 49")
    # The last 21 lines fill the conversation, in order.
    assert rows[:-2][-21:] == [f"you: {l}".rstrip() for l in lines[-21:]], term.show()
    assert input_row(rows) == ">"
    peer.close()
    check_given_back(term, 0, f"{term.dir}/none")


# --- the peer cannot take over the terminal -------------------------------------


def test_injection_attempts_change_nothing(term):
    peer = connect(term)
    title = term.pane("pane_title")
    term.type("mine")
    attacks = [
        b"\x1b[2J\x1b[Hcleared?\n",  # clear the screen, cursor home
        b"\x1b]0;OWNED\x07title\n",  # window title (OSC 0)
        b"\x1b]52;c;b3duZWQ=\x07clip\n",  # set the clipboard (OSC 52)
        b"\x1b[?1049halt\n",  # alternate screen
        b"\x9b2J8-bit\n",  # CSI as one 8-bit byte
        b"\xc2\x9b2Jutf8\n",  # CSI encoded in UTF-8
        b"\x1b[1;1r\x1b[5;1Hregion\n",  # scroll region, cursor
        b"abc\xe2\x80\xaedef\n",  # right-to-left override
    ]
    for attack in attacks:
        peer.send(attack)
    rows = term.wait_screen(r"abc<U\+202E>def$")
    conversation = rows[-10:-2]
    assert conversation == [
        "127.0.0.1: ^[[2J^[[Hcleared?",
        "127.0.0.1: ^[]0;OWNED^Gtitle",
        "127.0.0.1: ^[]52;c;b3duZWQ=^Gclip",
        "127.0.0.1: ^[[?1049halt",
        "127.0.0.1: <9B>2J8-bit",
        "127.0.0.1: <U+009B>2Jutf8",
        "127.0.0.1: ^[[1;1r^[[5;1Hregion",
        "127.0.0.1: abc<U+202E>def",
    ], term.show()
    assert input_row(rows) == "> mine" and term.cursor() == (24, 7)
    assert "· connected" in status_row(rows)
    assert term.pane("pane_title") == title
    assert term.pane("alternate_on") == "0"
    assert "b3duZWQ" not in term.buffers()
    term.keys("Enter")
    peer.expect(b"mine\n")
    peer.close()
    check_given_back(term, 0, f"{term.dir}/none")


# --- --plain ----------------------------------------------------------------------


def test_plain_is_the_line_by_line_chat(term):
    peer = connect(term, plain=True)
    term.type("typed")
    term.keys("Enter")
    peer.expect(b"typed\n")
    peer.send(b"from the peer\x1b[2J\n")
    rows = term.wait_screen(r"^< from the peer\^\[\[2J$")
    # The kernel echoed the line; no status row, no input row.
    assert "typed" in rows and not any("· connected" in r for r in rows), term.show()
    peer.close()
    check_given_back(term, 0, f"{term.dir}/none")


def test_telnet_peer(term):
    """A telnet user at the other end: its "\\r\\n" line ends are newlines."""
    port = free_port()
    other = Terminal(columns=70, rows=12)
    try:
        term.type(f'"$FORKCHAT" listen {port}')
        term.keys("Enter")
        term.wait_screen(r"listening on")
        other.type(f"telnet 127.0.0.1 {port}")
        other.keys("Enter")
        term.wait_screen(r"· connected ·")
        other.type("hello from telnet")
        other.keys("Enter")
        rows = term.wait_screen(r"^127\.0\.0\.1: hello from telnet$")
        assert not any("^M" in r for r in rows), term.show()
        term.type("hello telnet")
        term.keys("Enter")
        other.wait_screen(r"^hello telnet$")
        other.keys("C-]")
        other.wait_screen(r"^telnet>")
        other.type("quit")
        other.keys("Enter")
        term.wait_screen(r"closed the connection")
        assert term.exit_status() == 0
        other.wait_forkchat(0)
    finally:
        other.close()
