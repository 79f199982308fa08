"""Issue 19, item 7: a window resized during a burst. The peer sends
3000 numbered lines while the window is made taller, shorter, wider and
narrower (never narrower than the lines); afterwards the terminal's
scrollback and screen, read as a person scrolls back through them
(capture-pane -J -S -), hold every line exactly once, in order."""

import collections
import os
import re
import time

import pytest

from harness import Peer, free_port, listen_socket, mode_args
from terminal import Terminal

LINES = 3000
LINE = re.compile(r"^127\.0\.0\.1: line (\d{5})$")
# Taller, shorter, the same, much shorter and narrower, wider, back.
SIZES = [(80, 30), (80, 18), (80, 26), (64, 14), (90, 24), (80, 24)]


def connect_in(term, args=()):
    """Runs `forkchat connect` in the terminal against a socket of the
    test's own; returns the peer once it has accepted."""
    port = free_port()
    server = listen_socket(port)
    term.type(f'"$FORKCHAT" connect 127.0.0.1 {port} {" ".join(args)}'.rstrip())
    term.keys("Enter")
    peer = Peer.accept(server)
    server.close()
    return peer


def send_paced(peer, data, pieces, gap):
    """Sends data in `pieces` sendall calls, `gap` seconds apart (a thread)."""
    import threading

    def send():
        size = -(-len(data) // pieces)
        for i in range(0, len(data), size):
            peer.send(data[i : i + size])
            time.sleep(gap)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def burst_with_resizes(mode, sizes=SIZES, pause=float(os.environ.get("RESIZE_PAUSE", "0.3")), pieces=int(os.environ.get("RESIZE_PIECES", "60")), gap=float(os.environ.get("RESIZE_GAP", "0.03")), dump=None, lagging=False):
    """One trial: the counts of numbered lines seen twice and never, and
    whether those seen come in order. dump: a file for what the trial saw
    (the screen right after each resize, the lines lost or doubled, the
    scrollback and screen), kept by the caller if the trial fails.
    lagging: each resize with the tmux server stopped first
    (Terminal.resize_lagging)."""
    term = Terminal(columns=80, rows=24, history=10000)
    snapshots = []
    try:
        if dump and os.environ.get("RESIZE_RAW"):
            # Every byte the pane's programs wrote, for a failing trial.
            term._tmux("pipe-pane", "-t", "t", "-o", f"cat > {dump}.raw")
        peer = connect_in(term, mode_args(mode))
        term.wait_screen(r"· connected", what="the status row")
        start = time.monotonic()
        sending = send_paced(peer, b"".join(b"line %05d\n" % i for i in range(1, LINES + 1)), pieces, gap)
        for columns, rows in sizes:
            time.sleep(pause)
            if lagging:
                term.resize_lagging(columns, rows)
            else:
                term.resize(columns, rows)
            if dump:
                # Where the burst was when tmux took the new size.
                snapshots.append((time.monotonic() - start, columns, rows, term.screen()))
        term.wait_screen(r"^127\.0\.0\.1: line %05d$" % LINES, timeout=30, what="the burst's last line")
        took = time.monotonic() - start
        sending.join()
        # The last resize's redraw is done once the status row is back at
        # the new size's second row from the bottom.
        term.wait_screen(lambda rows: "· connected" in rows[-2] and rows[-3].endswith("%05d" % LINES))
        history = term.joined_history()
        seen = [int(m.group(1)) for row in history if (m := LINE.match(row))]
        counts = collections.Counter(seen)
        twice = sum(n - 1 for n in counts.values() if n > 1)
        never = LINES - len(counts)
        in_order = all(a < b for a, b in zip(seen, seen[1:]))
        print(f"resize trial ({mode}): twice={twice} never={never} in_order={in_order} took={took:.2f}s")
        if dump:
            with open(dump, "w") as file:
                file.write(f"mode {mode}: twice={twice} never={never} in_order={in_order} took={took:.2f}s\n")
                file.write(f"never: {sorted(set(range(1, LINES + 1)) - set(counts))}\n")
                file.write(f"twice: {sorted(n for n, c in counts.items() if c > 1)}\n")
                for at, columns, rows, screen in snapshots:
                    file.write(f"--- {at:.3f}s: resized to {columns}x{rows}, the screen then:\n")
                    file.write("\n".join(f"{i + 1:2}|{row}" for i, row in enumerate(screen)) + "\n")
                file.write("--- the scrollback and screen at the end (capture-pane -J -S -):\n")
                file.write("\n".join(history) + "\n")
        peer.close()
        term.wait_screen(r"^\$", what="the shell's prompt")
        return twice, never, in_order
    finally:
        term.close()


TRIALS = int(os.environ.get("RESIZE_TRIALS", "1"))


@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.parametrize("mode", ["default", "threads", "poll"])
def test_resize_during_burst(mode, trial):
    # RESIZE_DUMP=PREFIX: each trial writes PREFIX.MODE-TRIAL.txt (and,
    # with RESIZE_RAW=1, the pane's raw bytes in PREFIX.MODE-TRIAL.txt.raw);
    # a trial that passes removes its files, a failing one keeps them.
    dump = f"{os.environ['RESIZE_DUMP']}.{mode}-{trial}.txt" if os.environ.get("RESIZE_DUMP") else None
    twice, never, in_order = burst_with_resizes(mode, dump=dump)
    if dump and (twice, never, in_order) == (0, 0, True):
        for name in (dump, dump + ".raw"):
            if os.path.exists(name):
                os.remove(name)
    assert (twice, never, in_order) == (0, 0, True), f"the trial's dump: {dump}" if dump else "RESIZE_DUMP=PREFIX keeps a dump"


# The same while tmux lags behind: it reads a burst's updates in pieces
# and takes each resize between two of them, the cursor wherever that
# piece left it. Made shorter with the cursor above the bottom row, tmux
# deletes the rows under it (the status and input rows) instead of pushing
# rows into the scrollback; rows counted from the bottom then went in
# above the last two conversation rows, which the redraw covered: two
# lines lost (8 trials in 30 before the rows were counted from the
# conversation's last row). More shrinks than SIZES, each a chance.
LAGGING_SIZES = [(80, 30), (80, 18), (80, 28), (80, 16), (80, 26), (64, 14), (80, 24)]


@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.parametrize("mode", ["default", "threads", "poll"])
def test_resize_while_the_terminal_lags(mode, trial):
    dump = f"{os.environ['RESIZE_DUMP']}.lagging-{mode}-{trial}.txt" if os.environ.get("RESIZE_DUMP") else None
    twice, never, in_order = burst_with_resizes(mode, sizes=LAGGING_SIZES, pause=0.25, dump=dump, lagging=True)
    if dump and (twice, never, in_order) == (0, 0, True):
        for name in (dump, dump + ".raw"):
            if os.path.exists(name):
                os.remove(name)
    assert (twice, never, in_order) == (0, 0, True), f"the trial's dump: {dump}" if dump else "RESIZE_DUMP=PREFIX keeps a dump"


# The known limit (README, forkchat(1) BUGS): a window made narrower than
# the status row's text. tmux re-wraps the old status row in two on the
# resize, before forkchat hears of it, and the extra row pushes one more
# conversation row into the scrollback, which the redraw then draws again.
# The screen itself is right: the status row cut to the new width.
@pytest.mark.parametrize("columns", [62, 40])
def test_narrower_than_the_status_row(columns):
    term = Terminal(columns=80, rows=24, history=10000)
    try:
        peer = connect_in(term)
        status = term.wait_screen(r"· connected", what="the status row")[-2]
        peer.send(b"".join(b"line %05d\n" % i for i in range(1, 101)))
        term.wait_screen(r"^127\.0\.0\.1: line 00100$", what="the last line")
        term.resize(columns, 24)
        # The status row, cut to fit: a space and as much text as fits.
        cut = status[:columns].rstrip()
        screen = term.wait_screen(
            lambda rows: rows[-2] == cut and rows[-3] == "127.0.0.1: line 00100" and rows[-1] == ">",
            what=f"the layout at {columns} columns",
        )
        assert sum("· connected" in row for row in screen) == 1, term.show()
        seen = [int(m.group(1)) for row in term.joined_history() if (m := LINE.match(row))]
        counts = collections.Counter(seen)
        twice = sum(n - 1 for n in counts.values() if n > 1)
        print(f"narrower ({columns} columns, status {len(status)}): twice={twice} never={100 - len(counts)}")
        assert len(counts) == 100
        # Once each while the status row fits; one line twice when tmux cut it in two.
        assert twice == (0 if len(status) <= columns else 1)
        peer.close()
        term.wait_screen(r"^\$", what="the shell's prompt")
    finally:
        term.close()
