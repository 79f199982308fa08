#!/usr/bin/env python3
"""make order-file: writes Tests/bench/forkchat.order, the functions a real chat runs,
for lld's --symbol-ordering-file (the Makefile's build line).

Why: the static executable's text is 6 MB, and the code one chat runs,
about 400 kB of it, is scattered through all of it. Each read fault on a
file page makes the kernel map up to 16 pages around it (fault-around),
so a chat's parent ended with 4 MB of text resident for 400 kB it ran.
lld puts the functions listed here first in .text, in this order, so that
what a chat runs shares as few 64 kB windows as it can (docs/package.md).

How: valgrind's callgrind runs both ends of a chat over loopback, pipes on
both sides, a line each way, 4 MiB each way, then the end of input on
each side; each of
the four processes (each end and the child it forks) writes the functions
it ran. They are listed in the order of how many of the four processes ran
them (start-up first, as every process runs it, then what both directions
share, then each one's own), then by name, so that the file is the same
from one run to the next when the code is. valgrind 3.19 cannot read the
DWARF 5 debug info of the release build, so it runs a copy with the debug
info stripped (the symbol table kept).

Usage: order_file.py FORKCHAT_BINARY LINK_MAP OUTPUT
(LINK_MAP: lld's -Map of that binary's link)
"""

import collections
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

# Bytes of bulk data sent each way after the lines.
BULK = b"x" * (4 << 20)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def callgrind(binary, args, out_dir, **popen):
    return subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--dump-instr=no", "--compress-strings=no",
         "--compress-pos=no", "--demangle=no", f"--callgrind-out-file={out_dir}/callgrind.%p",
         binary] + args,
        stderr=subprocess.DEVNULL, **popen)


def chat(binary, out_dir):
    port = free_port()
    listener = callgrind(binary, ["listen", "--bind", "127.0.0.1", str(port)], out_dir,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    # Not a probe connection: it would be the listener's peer. /proc says
    # when the port listens.
    deadline = time.monotonic() + 60
    while not listening(port):
        if time.monotonic() > deadline or listener.poll() is not None:
            raise RuntimeError("forkchat listen did not start under valgrind")
        time.sleep(0.2)
    client = callgrind(binary, ["connect", "127.0.0.1", str(port)], out_dir,
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    client.stdin.write(b"hello from the client\n")
    client.stdin.flush()
    line = listener.stdout.readline()
    if line != b"hello from the client\n":
        raise RuntimeError(f"the listener printed {line!r}")
    listener.stdin.write(b"hello from the listener\n")
    listener.stdin.flush()
    line = client.stdout.readline()
    if line != b"hello from the listener\n":
        raise RuntimeError(f"the client printed {line!r}")
    # Then bulk data each way, as make bench sends it: a read that fills
    # the whole buffer switches the copy to splice(2).
    for writer, reader in ((client, listener), (listener, client)):
        sender = threading.Thread(target=lambda w=writer: (w.stdin.write(BULK), w.stdin.flush()))
        sender.start()
        received = 0
        while received < len(BULK):
            received += len(reader.stdout.read1(len(BULK) - received))
        sender.join()
    client.stdin.close()
    listener.stdin.close()
    codes = (client.wait(120), listener.wait(120))
    if codes != (0, 0):
        raise RuntimeError(f"forkchat exited {codes} under valgrind")


def listening(port):
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                return True
    return False


def functions(path):
    """The functions a callgrind file names (fn= lines), without the
    recursion marks ('2) and the addresses of code without a symbol."""
    names = set()
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("fn="):
                name = re.sub(r"'\d+$", "", line[3:].strip())
                if not name.startswith("0x") and not name.startswith("("):
                    names.add(name)
    return names


def input_sections(link_map):
    """{symbol: {input section: size}} of .text, from lld's -Map output."""
    where = collections.defaultdict(dict)
    in_text, section = False, None
    with open(link_map, errors="replace") as f:
        for line in f:
            fields = line.split(None, 4)
            if len(fields) < 5 or not re.match(r"^\s*[0-9a-f]+$", fields[0]):
                continue
            name = fields[4].strip()
            if ":(" in name:
                section = (name, int(fields[2], 16))
            elif line[len(line) - len(line.lstrip()):].startswith(name) and \
                    len(line) - len(line.lstrip()) < 45 and section is None or name.startswith("."):
                in_text, section = name == ".text", None
            elif in_text and section:
                where[name][section[0]] = section[1]
    return where


# libc.a(strlen-evex.o):(.text.evex): one variant of strlen, for one
# instruction set (the object's suffix).
VARIANT = re.compile(r"libc\.a\(((?:mem|str|stp|raw|wmem|wcs)[a-z_]*)-([a-z0-9_-]+)\.o\):\(\.text")

# libc.a(strcmp.o): the function that picks the variant (its ifunc resolver).
RESOLVER = re.compile(r"libc\.a\(((?:mem|str|stp|raw|wmem|wcs)[a-z_]*)\.o\):\(\.text")


def family(suffix):
    """The rank of a variant's instruction set: EVEX (AVX-512), AVX2, SSE,
    the rest."""
    for rank, prefixes in enumerate((("evex", "avx512"), ("avx",), ("sse",))):
        if suffix.startswith(prefixes):
            return rank
    return 3


# What every process runs and valgrind cannot show: under valgrind there is
# no vDSO, and glibc's start-up makes a link map of the vDSO's symbols
# (_dl_non_dynamic_init: _dl_new_object, _dl_lookup_symbol_x, strcmp...);
# and crtbeginT.o's frame_dummy and its neighbours, which callgrind does
# not name. Seen in the page faults of a real chat (perf record -e
# exceptions:page_fault_user, docs/package.md).
UNSEEN = ["_dl_new_object", "_dl_add_to_namespace_list", "_dl_setup_hash", "_dl_lookup_symbol_x",
          "do_lookup_x", "_dl_name_match_p", "strcmp", "frame_dummy", "register_tm_clones",
          "deregister_tm_clones", "__do_global_dtors_aux"]


def main():
    binary, link_map, output = sys.argv[1], sys.argv[2], sys.argv[3]
    with tempfile.TemporaryDirectory() as work:
        copy = os.path.join(work, "forkchat")
        subprocess.run(["strip", "--strip-debug", "-o", copy, binary], check=True)
        chat(copy, work)
        files = sorted(glob.glob(os.path.join(work, "callgrind.*")))
        if len(files) != 4:
            raise RuntimeError(f"callgrind wrote {len(files)} files, not 4 (two ends, two children)")
        runs = collections.Counter()
        for path in files:
            runs.update(functions(path))
    # lld moves whole input sections. A name that several sections define
    # (a local helper such as $sSqwxx) would move all of them, the 400 kB
    # .text of _StringProcessing with it: such names are left out. A
    # function inside a large section (the 1.6 MB .text of the standard
    # library's Swift.o, compiled without one section per function) moves
    # that section whole: those go last, so that they do not split the
    # small ones.
    for name in UNSEEN:
        runs[name] = len(files)
    where = input_sections(link_map)
    names = [n for n in runs if len(where.get(n, {})) <= 1]
    left_out = sorted(set(runs) - set(names))

    def large(name):
        return max(where.get(name, {None: 0}).values()) > 64 * 1024

    # glibc's string functions come in variants, one per instruction set
    # (libc.a's memmove-evex-unaligned-erms.o, strlen-avx2.o, ...), and the
    # machine that runs forkchat picks one at start (IRELATIVE relocations).
    # valgrind runs the AVX2 ones, having no AVX-512: a machine with it ran
    # the EVEX ones, left where the link put them, four more 64 kB windows
    # of text (docs/package.md). All the variants of each function run go
    # after the code above, grouped by instruction set, so that the ones a
    # machine picks lie together.
    variants = {}
    for name in names:
        for section in where.get(name, {}):
            m = VARIANT.search(section) or RESOLVER.search(section)
            if m:
                variants[m.group(1)] = True
    by_family = collections.defaultdict(set)
    for name, sections in where.items():
        for section in sections:
            m = VARIANT.search(section)
            if m and m.group(1) in variants and len(sections) == 1:
                by_family[(family(m.group(2)), m.group(2))].add(name)
    family_order = {name: (key, name) for key, members in by_family.items() for name in members}
    names = [n for n in names if n not in family_order]

    ordered = sorted(names, key=lambda n: (large(n), -runs[n], n))
    small = [n for n in ordered if not large(n)]
    ordered = small + sorted(family_order, key=family_order.get) + ordered[len(small):]
    with open(output, "w") as f:
        f.write("# lld --symbol-ordering-file: the functions a chat runs, written by\n"
                "# `make order-file` (Tests/bench/order_file.py); do not edit.\n")
        for name in ordered:
            f.write(name + "\n")
    print(f"{output}: {len(ordered)} functions, {sum(map(large, ordered))} of them in sections "
          f"over 64 kB; left out, defined more than once: {' '.join(left_out)}")


if __name__ == "__main__":
    main()
