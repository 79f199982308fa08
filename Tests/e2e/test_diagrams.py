"""make diagrams: Tests/diagrams/diagrams.py runs each scenario with two real
forkchat processes and draws it. It runs, every scenario gives an SVG and its
merged trace, and each diagram names every event of its trace: each trace
line is the title of a drawn element whose text shows the event, and the
arrows the scenario is about (FIN, RST, SIGCHLD, fork, kill) are drawn. In
the chat screen's diagram, each update is an arrow from the process that
wrote it to its terminal, and both of A's processes draw."""

import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import FORKCHAT


def free_port_outside_a_test() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

ROOT = Path(__file__).resolve().parent.parent.parent
GENERATOR = ROOT / "Tests" / "diagrams" / "diagrams.py"
SVG = "{http://www.w3.org/2000/svg}"
SCENARIOS = ["input-ends", "peer-closes", "ctrl-c", "reset", "child-killed", "two-writers"]
# The arrows each scenario is about (class names of the arrow groups).
ARROWS = {
    "input-ends": {"fin", "handshake"},
    "peer-closes": {"fin", "signal"},
    "ctrl-c": {"fin"},
    "reset": {"rst"},
    "child-killed": {"fin", "signal"},
    "two-writers": {"fin", "handshake"},  # (SIGCHLD races with the peer's FIN here)
}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    out = tmp_path_factory.mktemp("diagrams")
    # Once for the module, outside any one test's scope: a plain run, waited
    # for (the generator reaps what it starts).
    run = subprocess.run([sys.executable, GENERATOR, "--port", str(free_port_outside_a_test()), FORKCHAT, out],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def texts(element):
    return "".join(element.itertext())


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_diagram_names_the_events_of_its_trace(drawn, name):
    svg = ET.parse(drawn / f"{name}.svg").getroot()
    trace_lines = [l.split(None, 2)[2] for l in (drawn / f"{name}.txt").read_text().splitlines()
                   if not l.startswith("#")]
    traced = [l for l in trace_lines if l.startswith("trace ")]
    assert len(traced) >= 10, trace_lines
    groups = {g.findtext(f"{SVG}title"): g for g in svg.iter(f"{SVG}g") if g.find(f"{SVG}title") is not None}
    for line in traced:
        assert line in groups, f"{name}: no element for {line!r}"
        event = re.fullmatch(r"trace \S+ \d+ [a-z]+ ([a-z]+).*", line)[1]
        shown = texts(groups[line]).replace(f"<title>{line}</title>", "")
        assert event in shown.replace(line, ""), f"{name}: {line!r} drawn as {shown!r}"
    for kind in ("fork", "exit"):
        assert any(f" {kind}" in l for l in traced), f"{name}: no {kind} in the trace"
    arrows = {c.split()[1] for g in svg.iter(f"{SVG}g") if (c := g.get("class", "")).startswith("arrow ")}
    assert ARROWS[name] <= arrows, f"{name}: arrows {arrows}"
    labels = {texts(g) for g in svg.iter(f"{SVG}g") if g.get("class", "").startswith("arrow ")}
    if "fin" in ARROWS[name]:
        assert any(l.startswith("FIN") for l in labels), labels
    if "signal" in ARROWS[name]:
        assert "SIGCHLD" in labels, labels


def test_the_two_writers_each_draw_on_the_terminal(drawn):
    """Each `draw` event is drawn on the lifeline of the process that wrote
    it (its pid in the column's header), with an arrow to that side's
    terminal; on A, the child draws the input line and the parent the
    conversation."""
    svg = ET.parse(drawn / "two-writers.svg").getroot()
    headers = {texts(t): float(t.get("x")) for t in svg.iter(f"{SVG}text") if t.get("text-anchor") == "middle"
               and re.fullmatch(r"[AB]: \w+, \d+|[AB]'s terminal", texts(t))}
    column = {int(h.split(", ")[1]): (h[0], x) for h, x in headers.items() if ", " in h}
    seen = set()
    for g in svg.iter(f"{SVG}g"):
        if g.get("data-event") != "draw":
            continue
        line = g.findtext(f"{SVG}title")
        m = re.fullmatch(r"trace \S+ (\d+) ([a-z]+) draw (\w+) bytes=(\d+)", line)
        assert m, line
        pid, role, part = int(m[1]), m[2], m[3]
        side, x = column[pid]
        mark, arrow = g.find(f"{SVG}rect"), g.find(f"{SVG}line")
        assert float(mark.get("x")) + 4 == x, f"{line}: not on the lifeline of {pid}"
        terminal = headers[f"{side}'s terminal"]
        assert float(arrow.get("x1")) == x and abs(float(arrow.get("x2")) - terminal) <= 6, line
        seen.add((role, part))
    assert {("child", "input"), ("parent", "conversation"), ("main", "layout")} <= seen, seen


def test_the_committed_diagrams_are_the_generator_s(drawn):
    # docs/diagrams holds one SVG and one trace per scenario, made by `make diagrams`.
    committed = ROOT / "docs" / "diagrams"
    for name in SCENARIOS:
        svg = (committed / f"{name}.svg").read_text()
        assert svg.startswith("<svg ") and "<title>trace " in svg, name
        assert (committed / f"{name}.txt").read_text().startswith(f"# {name}: ")
    assert sorted(p.stem for p in committed.glob("*.svg")) == sorted(p.stem for p in drawn.glob("*.svg"))
