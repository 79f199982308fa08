"""The docs agree with the program: every option `forkchat --help` shows is in
the man page and the README, and every option the man page documents is one
the program knows. The man page renders without warnings."""

import glob
import os
import re
import subprocess

from harness import FORKCHAT, require_tool

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MAN_PAGE = os.path.join(ROOT, "docs", "forkchat.1")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[46h])(?![\w-])")


def help_text(*subcommand):
    run = subprocess.run([FORKCHAT, "help", *subcommand], capture_output=True, text=True, timeout=10)
    assert run.returncode == 0, run.stderr
    return run.stdout


def subcommands():
    text = help_text()
    block = text.split("SUBCOMMANDS:")[1]
    return re.findall(r"^\s{2,4}([a-z]+)\s{2,}", block, re.M)


def help_options():
    options = set(OPTION.findall(help_text()))
    for name in subcommands():
        options |= set(OPTION.findall(help_text(name)))
    return options


def man_source():
    with open(MAN_PAGE) as f:
        return f.read().replace("\\-", "-")


def test_there_are_subcommands_and_options():
    assert {"listen", "connect"} <= set(subcommands())
    assert {"--bind", "--keep", "--mode", "--trace", "--help", "--version", "-4", "-6"} <= help_options()


def test_every_option_in_help_is_in_the_man_page():
    missing = help_options() - set(OPTION.findall(man_source()))
    assert not missing, f"options in --help but not in docs/forkchat.1: {sorted(missing)}"


def test_every_option_in_the_man_page_is_in_help():
    extra = set(OPTION.findall(man_source())) - help_options()
    assert not extra, f"options in docs/forkchat.1 but not in --help: {sorted(extra)}"


def test_every_subcommand_is_in_the_man_page():
    source = man_source()
    for name in subcommands():
        assert re.search(rf"^\.B forkchat {name}\b", source, re.M), f"no SYNOPSIS line for {name}"


def test_every_option_in_help_is_in_the_readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    missing = help_options() - set(OPTION.findall(readme))
    assert not missing, f"options in --help but not in README.md: {sorted(missing)}"


def test_man_page_renders_cleanly():
    groff = require_tool("groff")  # (apt-get install groff-base)
    run = subprocess.run([groff, "-man", "-ww", "-z", MAN_PAGE], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stderr == "", run.stderr


def test_every_code_block_of_docs_fits_80_columns():
    # A projector, a terminal: what docs/ shows in a code block (commands,
    # outputs, diagrams) is at most 80 characters wide. Characters, not
    # bytes: "é", "…" and box-drawing characters take one column each.
    paths = glob.glob(os.path.join(ROOT, "docs", "*.md")) + glob.glob(os.path.join(ROOT, "docs", "fr", "*.md"))
    assert len(paths) >= 10
    wide = []
    for path in paths:
        inside = False
        for number, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
            if re.match(r"^\s*(```|~~~)", line):
                inside = not inside
            elif inside and len(line) > 80:
                wide.append(f"{os.path.relpath(path, ROOT)}:{number}: {len(line)} columns")
    assert not wide, "\n".join(wide)
