"""make diagrams: Tests/diagrams/diagrams.py runs each scenario with two real
forkchat processes and draws it, in English (docs/diagrams) and in French
(docs/fr/diagrams). The tests run it once and read what it drew:

- every trace line is drawn (the title of a row), the lifelines are the
  parent and child of each side (« A : père », « A : fils »), every label
  of the French version is French;
- each teardown diagram draws the data: a line typed at B going from B's
  child through the socket to A's parent (and, when A reads it, to A's
  terminal);
- no arrow points back in time; the TCP handshake is its own row, before
  accept(); Ctrl-C's SIGINT reaches both of A's processes, and A's child
  ends there; the SIGCHLD arrow leaves from the child's end; in
  two-writers B's line reaches A before A presses Enter;
- a projector can show them: at most 1280 px wide, text of 16 px or more,
  at most 20 event rows, no label box crossing a lifeline or another label
  (boxes computed from the monospace font: 0.602 em a character);
- the descriptor diagram says what /proc/PID/fd of a running chat says."""

import os
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import harness
from harness import FORKCHAT


def free_port_outside_a_test() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROOT = Path(__file__).resolve().parent.parent.parent
GENERATOR = ROOT / "Tests" / "diagrams" / "diagrams.py"
SVG = "{http://www.w3.org/2000/svg}"
SCENARIOS = ["input-ends", "peer-closes", "ctrl-c", "reset", "child-killed", "two-writers"]
TEARDOWNS = ["input-ends", "peer-closes", "ctrl-c", "reset", "child-killed"]
FD_NAMES = {"en": "processes-descriptors", "fr": "processus-descripteurs"}
LANGS = ["en", "fr"]
# The arrows between rows each scenario is about (class names of the arrow groups).
ARROWS = {
    "input-ends": {"fin", "data"},
    "peer-closes": {"fin", "data", "signal"},
    "ctrl-c": {"fin", "data"},
    "reset": {"rst", "data"},
    "child-killed": {"fin", "signal", "data"},
    "two-writers": {"fin", "data"},
}
HEADERS = {"en": {"parent": "{s}: parent", "child": "{s}: child"}, "fr": {"parent": "{s} : père", "child": "{s} : fils"}}
ENGLISH_WORDS = re.compile(r"\b(child|parent|types|writes|draws|receives|gets|dies|end of|unread|returns|the)\b")
CHAR = 0.602  # DejaVu Sans Mono's advance, in em


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    out = tmp_path_factory.mktemp("diagrams")
    # Once for the module, outside any one test's scope: a plain run, waited
    # for (the generator reaps what it starts).
    run = subprocess.run([sys.executable, GENERATOR, "--port", str(free_port_outside_a_test()), FORKCHAT,
                          out / "en", "--fr", out / "fr"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def texts(element):
    return "".join(element.itertext())


def svg_of(drawn, lang, name):
    return ET.parse(drawn / lang / f"{name}.svg").getroot()


def groups(svg, cls):
    return [g for g in svg.iter(f"{SVG}g") if g.get("class", "").split()[:1] == [cls]]


def lifelines(svg):
    return {l.get("data-column"): l for l in svg.iter(f"{SVG}line") if l.get("class") == "lifeline"}


def boxes(svg):
    """Each label's box (text of class label), from its x, y, anchor, size
    and tspans, as the font draws it."""
    size = float(svg.get("font-size"))
    out = []
    for g in svg.iter(f"{SVG}g"):
        for t in g.findall(f"{SVG}text"):
            if t.get("class") != "label":
                continue
            lines = [texts(s) for s in t.findall(f"{SVG}tspan")] or [texts(t)]
            w = max(len(l) for l in lines) * CHAR * size
            x, y = float(t.get("x")), float(t.get("y"))
            x0 = {"start": x, "end": x - w, "middle": x - w / 2}[t.get("text-anchor", "start")]
            lead = sum(float(s.get("dy", 0)) for s in t.findall(f"{SVG}tspan"))
            out.append(((x0, y - 0.8 * size, x0 + w, y + lead + 0.25 * size), " / ".join(lines)))
    return out


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_each_diagram_draws_every_event_of_its_trace(drawn, name, lang):
    svg = svg_of(drawn, lang, name)
    trace_lines = [l.split(None, 2)[2] for l in (drawn / lang / f"{name}.txt").read_text().splitlines()
                   if not l.startswith("#")]
    traced = [l for l in trace_lines if l.startswith("trace ")]
    assert len(traced) >= 10, trace_lines
    titles = "\n".join(g.findtext(f"{SVG}title") or "" for g in groups(svg, "row"))
    for line in traced:
        assert line in titles.split("\n"), f"{name}: no row for {line!r}"
    for kind in ("fork", "exit"):
        assert any(f" {kind}" in l for l in traced), f"{name}: no {kind} in the trace"
    arrows = {g.get("class").split()[1] for g in groups(svg, "arrow")}
    assert ARROWS[name] <= arrows, f"{name}: arrows {arrows}"
    labels = {texts(g.find(f"{SVG}text")) for g in groups(svg, "arrow")}
    if "fin" in ARROWS[name]:
        assert any(l.startswith("FIN") for l in labels), labels
    if "signal" in ARROWS[name]:
        assert "SIGCHLD" in labels, labels


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_lifelines_are_parent_and_child_and_the_french_is_french(drawn, name, lang):
    svg = svg_of(drawn, lang, name)
    headers = {texts(t) for t in svg.iter(f"{SVG}text") if t.get("class") == "header"}
    for s in "AB":
        for role in ("parent", "child"):
            assert HEADERS[lang][role].format(s=s) in headers, headers
    assert not any("listen" in h or "connect" in h for h in headers), headers
    assert set(lifelines(svg)) == {f"{s}-{w}" for s in "AB" for w in ("term", "pere", "fils")}
    if lang == "fr":
        labels = [t for _, t in boxes(svg)] + [texts(t) for t in svg.iter(f"{SVG}text")
                                                if t.get("class") in ("title", "note")]
        english = [l for l in labels if ENGLISH_WORDS.search(l)]
        assert not english, english


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_a_projector_can_show_it(drawn, name, lang):
    svg = svg_of(drawn, lang, name)
    assert float(svg.get("width")) <= 1280
    sizes = [float(e.get("font-size")) for e in svg.iter() if e.get("font-size")]
    assert sizes and min(sizes) >= 16, sizes
    rows = {g.get("data-y") for g in groups(svg, "row")}
    assert len(rows) <= 20, f"{name}: {len(rows)} event rows"
    lines = [(float(l.get("x1")), float(l.get("y1")), float(l.get("y2"))) for l in lifelines(svg).values()]
    placed = boxes(svg)
    for (x0, y0, x1, y1), text in placed:
        assert x0 >= 0 and x1 <= float(svg.get("width")), f"{name}: {text!r} runs off the picture"
        for x, top, bottom in lines:
            assert not (x0 < x < x1 and y0 < bottom and y1 > top), f"{name}: {text!r} over the lifeline at x={x}"
    for i, (a, ta) in enumerate(placed):
        for b, tb in placed[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), \
                f"{name}: {ta!r} overlaps {tb!r}"


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_no_arrow_points_back_in_time(drawn, name, lang):
    svg = svg_of(drawn, lang, name)
    for g in groups(svg, "arrow"):
        assert float(g.get("data-y2")) >= float(g.get("data-y1")), f"{name}: {texts(g)} goes up"
        line = g.find(f"{SVG}line")
        assert float(line.get("y2")) >= float(line.get("y1")), f"{name}: {texts(g)} goes up"
    for g in groups(svg, "row"):  # the arrows within a row are level
        for line in g.findall(f"{SVG}line"):
            assert line.get("y1") == line.get("y2"), texts(g)
    # The handshake is done by the kernels before accept() is called: its
    # own row, above accept's, not ending on it.
    rows = groups(svg, "row")
    hand = next(g for g in rows if g.get("data-keys").startswith("handshake"))
    accept = next(g for g in rows if "accept" in g.get("data-keys").split())
    assert float(hand.get("data-y")) < float(accept.get("data-y"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_process_s_events_are_drawn_in_the_order_it_traced_them(drawn, name):
    """Merging two clocks moves a side as a whole, or one row just before
    what it caused: never one event of a process past another of its own,
    nor before what the person did to cause it."""
    svg = svg_of(drawn, "fr", name)
    seen = {}
    for g in groups(svg, "row"):
        pid = g.get("data-pid")
        for line in (g.findtext(f"{SVG}title") or "").split("\n"):
            m = re.fullmatch(r"trace (\S+) (\d+) .*", line)
            if m and m[2] == pid:
                seen.setdefault(pid, []).append((float(g.get("data-y")), float(m[1]), line))
    assert len(seen) >= 2, seen.keys()
    for pid, events in seen.items():
        events.sort()
        for (y1, ms1, l1), (y2, ms2, l2) in zip(events, events[1:]):
            assert y1 == y2 or ms1 <= ms2, f"{name}: {l2!r} drawn after {l1!r}"
    rows = groups(svg, "row")
    for action, effect in (("ctrl-d", "eof-stdin"), ("pipe-ends", "eof-stdin")):
        for g in rows:
            if g.get("data-keys").startswith(action):
                side = g.get("data-column")[0]
                after = [r for r in rows if r.get("data-column") == f"{side}-fils"
                         and effect in r.get("data-keys").split()]
                assert after and float(after[0].get("data-y")) > float(g.get("data-y")), name


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", TEARDOWNS + ["two-writers"])
def test_the_data_goes_from_b_s_child_to_a_s_parent(drawn, name, lang):
    svg = svg_of(drawn, lang, name)
    data = [g for g in groups(svg, "arrow") if "data" in g.get("class").split()
            and g.get("data-from") == "B-fils" and g.get("data-to") == "A-pere"]
    assert data, f"{name}: no data arrow from B's child to A's parent"
    if name == "reset":
        return  # (A is stopped: the line stays in its socket)
    ends = {g.get("data-y2") for g in data}
    shown = [g for g in groups(svg, "row") if g.get("data-column") == "A-pere" and g.get("data-y") in ends
             and any(l.get("class") in ("hop data", "hop draw") for l in g.findall(f"{SVG}line"))]
    assert shown, f"{name}: the line is not written to A's terminal"
    term_x = float(lifelines(svg)["A-term"].get("x1"))
    line = next(l for l in shown[0].findall(f"{SVG}line") if l.get("class") in ("hop data", "hop draw"))
    assert abs(float(line.get("x2")) - term_x) <= 8


def column_x(svg, column):
    return float(lifelines(svg)[column].get("x1"))


@pytest.mark.parametrize("lang", LANGS)
def test_ctrl_c_sends_sigint_to_both_and_the_child_dies_of_it(drawn, lang):
    svg = svg_of(drawn, lang, "ctrl-c")
    row = next(g for g in groups(svg, "row") if g.get("data-keys").startswith("ctrl-c"))
    ends = [float(l.get("x2")) for l in row.findall(f"{SVG}line") if l.get("class") == "hop sigint"]
    for column in ("A-fils", "A-pere"):
        assert any(abs(x - column_x(svg, column)) <= 8 for x in ends), (column, ends)
    child = lifelines(svg)["A-fils"]
    assert child.get("y2") == row.get("data-y"), "A's child does not end where SIGINT reaches it"
    deaths = {p.get("data-column") for p in svg.iter(f"{SVG}path") if p.get("class") == "death"}
    assert "A-fils" in deaths
    kill = next(g for g in groups(svg, "row") if "kill-late" in g.get("data-keys").split())
    assert float(kill.get("data-y")) > float(row.get("data-y"))  # the SIGTERM comes after, for nothing


@pytest.mark.parametrize("lang", LANGS)
def test_sigchld_leaves_from_the_child_s_end(drawn, lang):
    svg = svg_of(drawn, lang, "child-killed")
    sigchld = [g for g in groups(svg, "arrow") if "signal" in g.get("class").split()]
    assert sigchld
    for g in sigchld:
        assert g.get("data-from") == "B-fils" and g.get("data-to") == "B-pere"
        assert g.get("data-y1") == lifelines(svg)["B-fils"].get("y2"), "not from where B's child ended"


@pytest.mark.parametrize("lang", LANGS)
def test_two_writers_b_s_line_arrives_while_a_types(drawn, lang):
    svg = svg_of(drawn, lang, "two-writers")
    typing = [g for g in groups(svg, "row") if g.get("data-column") == "A-term"
              and g.get("data-keys").startswith("types")]
    assert len(typing) == 2, "A types twice: without Enter, then the rest and Enter"
    data = next(g for g in groups(svg, "arrow") if "data" in g.get("class").split() and g.get("data-from") == "B-fils")
    assert float(typing[0].get("data-y")) < float(data.get("data-y2")) < float(typing[1].get("data-y"))
    # A's child draws the input line, A's parent the conversation
    drawers = {(g.get("data-column"), k) for g in groups(svg, "row") for k in g.get("data-keys").split()}
    assert ("A-fils", "draw-input") in drawers and ("A-pere", "draw-shown") in drawers, drawers


# The descriptors after fork, from /proc of a chat run here.


def proc_fds(pid):
    table = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            table[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            pass
    return table


def kinds(table, tty_of):
    def kind(target):
        if target.startswith("socket:"):
            return "socket"
        if target.startswith("pipe:"):
            return "pipe"
        if target == "/dev/null":
            return "closed"  # given up after fork, its number held by /dev/null
        return "terminal" if target == tty_of else "other"
    return {fd: kind(t) for fd, t in table.items()}


def test_the_descriptor_diagram_is_what_proc_says(drawn):
    listener, client = harness.forkchat_pair(listen_args=("--plain",), connect_args=("--plain",),
                                             listen_stdin="pty", connect_stdin="pty")
    seen = {}
    try:
        for letter, fc in (("A", listener), ("B", client)):
            child = fc.child_pid()
            tty = os.readlink(f"/proc/{fc.pid}/fd/1")
            harness.wait_until(lambda: proc_fds(child).get(1, "/dev/null") == "/dev/null"
                               and proc_fds(fc.pid).get(0, "/dev/null") == "/dev/null", what="closes")
            seen[(letter, "pere")] = kinds(proc_fds(fc.pid), tty)
            seen[(letter, "fils")] = kinds(proc_fds(child), tty)
            socket_fd = {fd for fd, k in seen[(letter, "pere")].items() if k == "socket"}
            same = {t for fd, t in proc_fds(fc.pid).items() if fd in socket_fd}
            assert same and same <= set(proc_fds(child).values()), "parent and child share one socket"
        client.send(b"\x04")
        assert client.wait() == 0 and listener.wait() == 0
    finally:
        for fc in (listener, client):
            if fc.popen.poll() is None:
                fc.kill_session()
    for lang in LANGS:
        svg = ET.parse(drawn / lang / f"{FD_NAMES[lang]}.svg").getroot()
        for g in groups(svg, "process"):
            key = (g.get("data-side"), g.get("data-role"))
            drawn_fds = {int(f.get("data-fd")): f.get("data-kind") for f in groups(g, "fd")}
            mine = seen[key]
            # 0, 1 and the socket: held or closed as /proc says (the harness
            # collects stderr, so fd 2 is a pipe here and the terminal there)
            for fd in (0, 1):
                closed = mine.get(fd, "closed") == "closed"
                assert (drawn_fds.get(fd) == "closed") == closed, (lang, key, fd, drawn_fds, mine)
            sockets = {fd for fd, k in mine.items() if k == "socket"}
            assert sockets == {fd for fd, k in drawn_fds.items() if k == "socket"}, (lang, key, drawn_fds, mine)
            held = {fd: ("terminal" if k == "terminal" else k) for fd, k in drawn_fds.items()
                    if k not in ("closed",) and fd != 2}
            assert held == {fd: k for fd, k in mine.items() if fd != 2 and k != "closed"}, (lang, key, held, mine)
        assert sum(1 for _ in groups(svg, "process")) == 4


def test_the_committed_diagrams_are_the_generator_s(drawn):
    # docs/diagrams (English) and docs/fr/diagrams (French) hold one SVG
    # and one trace per scenario, and the descriptors, made by `make diagrams`.
    for lang, committed in (("en", ROOT / "docs" / "diagrams"), ("fr", ROOT / "docs" / "fr" / "diagrams")):
        for name in SCENARIOS:
            svg = (committed / f"{name}.svg").read_text()
            assert svg.startswith("<svg ") and "<title>trace " in svg, name
            assert (committed / f"{name}.txt").read_text().startswith(f"# {name}")
        assert (committed / f"{FD_NAMES[lang]}.svg").read_text().startswith("<svg ")
        assert sorted(p.stem for p in committed.glob("*.svg")) == sorted(p.stem for p in (drawn / lang).glob("*.svg"))
