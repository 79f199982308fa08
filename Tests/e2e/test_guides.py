"""The lab's documents exist in French and in English: the long guide
(docs/fr/guide.md, docs/course.md), the student's sheet (docs/fr/tp.md,
docs/lab.md) and the teacher's book (docs/fr/enseignant.md,
docs/teacher.md). Each pair has the same steps in the same order (the `<!-- step: X -->`
markers: add a new step to both with the same marker; what follows
`<!-- end of the steps -->`, the French glossary and answers, is not a
step), and, step by step,
the same commands: the lines of the code blocks and the inline code that
start with a command (comments after `#` aside). Both show the diagrams."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
GUIDES = {"en": ROOT / "docs" / "course.md", "fr": ROOT / "docs" / "fr" / "guide.md"}
PAIRS = {
    "guide": GUIDES,
    "sheet": {"en": ROOT / "docs" / "lab.md", "fr": ROOT / "docs" / "fr" / "tp.md"},
    "book": {"en": ROOT / "docs" / "teacher.md", "fr": ROOT / "docs" / "fr" / "enseignant.md"},
}
COMMANDS = (
    "forkchat", "nc", "socat", "ps", "pstree", "strace", "ss", "python3", "curl", "tmux", "make", "sudo",
    "cat", "echo", "ip", "getent", "wc", "head", "timeout", "printf", "telnet", "ls", "hostname", "sort",
    "pgrep", "kill", "grep",
)
COMMAND = re.compile(r"(?:\$ )?((?:%s)(?: [^\n]*)?)$" % "|".join(COMMANDS))


def steps(path):
    """{step: text} in the order of the markers."""
    text = path.read_text()
    assert text.count("<!-- end of the steps -->") == 1, path
    parts = re.split(r"<!-- step: (\S+) -->\n", text.split("<!-- end of the steps -->")[0])
    return dict(zip(parts[1::2], parts[2::2]))


def normal(command):
    return " ".join(re.sub(r"\s+#\s.*$", "", command).split())


def commands(text):
    found = set()
    blocks = re.findall(r"^ *```[^\n]*\n(.*?)^ *```", text, re.M | re.S)
    for block in blocks:
        for line in block.splitlines():
            m = COMMAND.match(line.strip())
            if m and not m[1].startswith("forkchat:"):
                found.add(normal(m[1]))
    prose = re.sub(r"^ *```.*?^ *```", "", text, flags=re.M | re.S)
    for span in re.findall(r"`([^`\n]+)`", prose):
        m = COMMAND.fullmatch(span.strip())
        if m and " " in m[1] and not m[1].startswith("forkchat:"):
            found.add(normal(m[1]))
    return found


@pytest.mark.parametrize("pair", list(PAIRS))
def test_same_steps_in_the_same_order(pair):
    en, fr = steps(PAIRS[pair]["en"]), steps(PAIRS[pair]["fr"])
    assert len(en) >= {"guide": 20, "sheet": 5, "book": 4}[pair], list(en)
    assert list(en) == list(fr)


@pytest.mark.parametrize("pair", list(PAIRS))
def test_same_commands_step_by_step(pair):
    en, fr = steps(PAIRS[pair]["en"]), steps(PAIRS[pair]["fr"])
    total = 0
    for key in en:
        a, b = commands(en[key]), commands(fr[key])
        total += len(a)
        assert a == b, f"{pair}, step {key}: only in English {sorted(a - b)}; only in French {sorted(b - a)}"
    assert total >= {"guide": 100, "sheet": 40, "book": 5}[pair], f"only {total} commands found: the extraction is broken"


def test_same_outputs_in_the_sheet():
    # The sheet's code blocks (commands and what they print) are the same,
    # in the same order, in both languages.
    def blocks(path):
        return re.findall(r"^```[^\n]*\n(.*?)^```", path.read_text(), re.M | re.S)

    assert blocks(PAIRS["sheet"]["en"]) == blocks(PAIRS["sheet"]["fr"])


DIAGRAMS = {"en": ROOT / "docs" / "diagrams", "fr": ROOT / "docs" / "fr" / "diagrams"}


def test_both_guides_show_the_diagrams():
    # each guide its own language's pictures (docs/fr/guide.md the French ones)
    for lang, path in GUIDES.items():
        names = sorted(p.stem for p in DIAGRAMS[lang].glob("*.svg"))
        assert len(names) >= 7, (lang, names)
        text = path.read_text()
        assert "../diagrams/" not in text
        for name in names:
            assert f"diagrams/{name}.svg)" in text, f"{lang}: no diagram {name}"


def test_the_sheet_and_the_book_show_the_french_diagrams():
    # docs/fr/diagrams/: the French pictures (père / fils), one of them the
    # processes and their descriptors after fork.
    names = {p.stem for p in DIAGRAMS["fr"].glob("*.svg")}
    assert len(names) >= 7, names
    for path in (PAIRS["sheet"]["fr"], PAIRS["book"]["fr"]):
        shown = set(re.findall(r"\]\(diagrams/([a-z-]+)\.svg\)", path.read_text()))
        assert names <= shown, f"{path.name}: no diagram {sorted(names - shown)}"


ESCAPES = ("\x1b", "\\x1b", "\\33", "\\033", "\\e[", "\\u001b", "\\x9b")


def fenced(path):
    """(info string, lines) of every fenced block, the indented ones (in a
    list) included, their indent taken off."""
    found = []
    for indent, info, body in re.findall(r"^( *)```([^\n]*)\n(.*?)^ *```", path.read_text(), re.M | re.S):
        found.append((info.strip(), [l[len(indent):] if l.startswith(indent) else l for l in body.splitlines()]))
    return found


@pytest.mark.parametrize("lang", list(GUIDES))
def test_every_block_of_the_guides_fits_a_projector(lang):
    # at most 80 columns (a longer output is cut, marked …); no escape codes
    # in what a block shows the machine print (strace -s 0 or NO_COLOR=1
    # keep them out); a program's source (```python) may write them.
    blocks = fenced(GUIDES[lang])
    assert len(blocks) >= 100, f"only {len(blocks)} blocks found: the extraction is broken"
    assert any(info == "python" for info, _ in blocks)
    for info, lines in blocks:
        for line in lines:
            assert len(line) <= 80, f"{lang}: {len(line)} columns: {line}"
            if info != "python":
                assert not any(e in line for e in ESCAPES), f"{lang}: escape code in {line}"
