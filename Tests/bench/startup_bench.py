#!/usr/bin/env python3
"""What forkchat costs to start, against nc, in one run (docs/package.md):
the counts that load cannot change, then alternated timings.

- minor page faults of `connect, send a line, exit` (the process and the
  child it forks and reaps: getrusage(RUSAGE_CHILDREN) around each run);
- system calls of the same run (strace -f -c);
- peak resident memory per process (VmHWM of each process of a bulk run,
  sampled as make bench samples it), and where the largest one's pages are
  near the end of the transfer: by mapping (/proc/PID/smaps), and the
  executable's by section (/proc/PID/pagemap against readelf -S);
- connect, send a line, exit: bench.py's connect_send_exit against its
  Sink, forkchat and nc in turn, RUNS rounds, median and quartiles.

Usage: startup_bench.py FORKCHAT_BINARY [--runs N] [--bulk-mib N]
"""

import argparse
import os
import re
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the functions make bench uses)


def faults_of(tool, sink):
    """Minor faults of one connect, send a line, exit (with its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    bench.connect_send_exit(tool, sink)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before


def syscalls_of(tool, sink):
    """System calls of one connect, send a line, exit, strace -f -c."""
    _, connect = tool
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        p = subprocess.run(["strace", "-f", "-c", "-o", out.name] + connect(sink.port),
                           input=b"hello\n", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if p.returncode != 0:
            raise RuntimeError(f"{connect(sink.port)[0]} exited {p.returncode}")
        text = open(out.name).read()
    total = re.search(r"^\s*\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$", text, re.M)
    return int(total.group(1))


def smaps_by_mapping(pid):
    """[(mapping, Rss kB)] of a process, the executable's and the others."""
    rows, name = [], None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    fields = line.split()
                    perms = fields[1]
                    path = fields[5] if len(fields) > 5 else "[anon]"
                    name = f"{fields[0]} {perms} {os.path.basename(path)}"
                elif line.startswith("Rss:"):
                    rows.append((name, int(line.split()[1])))
    except OSError:
        pass
    return rows


def sections_of(binary):
    """[(start, end, name)] of the sections a binary loads (readelf -S)."""
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True).stdout
    rows = []
    for m in re.finditer(r"^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", out, re.M):
        start, size = int(m.group(2), 16), int(m.group(3), 16)
        if start and size:
            rows.append((start, start + size, m.group(1)))
    return sorted(rows)


def pages_by_section(pid, sections):
    """{section: [resident pages, of them written (a private copy)]} of the
    executable's file mappings of a process: /proc/PID/pagemap, bit 63
    present, bit 61 clear for a page that is no longer the file's. A page
    two sections share counts for the first one it holds."""
    counts = {}
    try:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
            exe = os.readlink(f"/proc/{pid}/exe")
            for line in maps:
                fields = line.split()
                if len(fields) < 6 or fields[5] != exe:
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                pagemap.seek(start // 4096 * 8)
                entries = pagemap.read((end - start) // 4096 * 8)
                for i in range(len(entries) // 8):
                    (entry,) = struct.unpack_from("<Q", entries, i * 8)
                    if not entry >> 63 & 1:
                        continue
                    page = start + i * 4096
                    name = next((n for a, b, n in sections if b > page and a < page + 4096), "(headers)")
                    row = counts.setdefault(name, [0, 0])
                    row[0] += 1
                    row[1] += not entry >> 61 & 1
    except OSError:
        pass
    return counts


def bulk_memory(tool, size):
    """Peak VmHWM of each process of one bulk run (client → server), as
    bench.bulk samples it, and the smaps of the largest one, read while the
    transfer runs."""
    memory = []
    snapshot = {}
    done = threading.Event()
    listen, _ = tool
    sections = sections_of(listen(0)[0]) if os.path.basename(listen(0)[0]) == "forkchat" else None

    def watch():
        # This script's descendants (the two ends and their children), read
        # every 50 ms; the last reading of the largest one is kept.
        while not done.is_set():
            for pid in bench.process_tree(os.getpid())[1:]:
                try:
                    if os.path.basename(os.readlink(f"/proc/{pid}/exe")).startswith("python"):
                        continue  # forked by subprocess, not yet exec'd
                except OSError:
                    continue
                hwm = bench.vm_hwm_kib(pid)
                if hwm and hwm >= snapshot.get("hwm", 0):
                    rows = smaps_by_mapping(pid)
                    if rows:
                        snapshot.update(hwm=hwm, pid=pid, rows=rows,
                                        pages=pages_by_section(pid, sections) if sections else {})
            done.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        bench.bulk(tool, size, 0, memory)
    finally:
        done.set()
        watcher.join()
    return memory[0], snapshot


def quartiles(values):
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("forkchat")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--bulk-mib", type=int, default=1024)
    args = parser.parse_args()
    forkchat = os.path.abspath(args.forkchat)
    all_tools = bench.tools(forkchat)
    names = ("forkchat", "nc")
    sink = bench.Sink()

    for name in names:
        bench.connect_send_exit(all_tools[name], sink)  # warm the page cache
    faults = {n: [faults_of(all_tools[n], sink) for _ in range(20)] for n in names}
    calls = {n: syscalls_of(all_tools[n], sink) for n in names}
    peaks, where = {}, {}
    for name in names:
        peaks[name], where[name] = bulk_memory(all_tools[name], args.bulk_mib << 20)
    times = {n: [] for n in names}
    for _ in range(args.runs):
        for name in names:
            times[name].append(bench.connect_send_exit(all_tools[name], sink) * 1e3)

    print(f"{os.uname().nodename}, {os.uname().release}, load {os.getloadavg()[0]:.2f}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'':24} {'forkchat':>10} {'nc':>10} {'ratio':>7}")
    f, n = (statistics.median(faults[x]) for x in names)
    print(f"{'minor faults (median)':24} {f:10.0f} {n:10.0f} {f / n:6.2f}×")
    f, n = (calls[x] for x in names)
    print(f"{'system calls':24} {f:10d} {n:10d} {f / n:6.2f}×")
    f, n = (peaks[x] for x in names)
    print(f"{'peak VmHWM, KiB':24} {f:10d} {n:10d} {f / n:6.2f}×")
    f, n = (quartiles(times[x]) for x in names)
    print(f"{'start to exit p50, ms':24} {f[1]:10.2f} {n[1]:10.2f} {f[1] / n[1]:6.2f}×")
    print(f"{'  quartiles':24} {f[0]:4.2f}–{f[2]:4.2f} {n[0]:4.2f}–{n[2]:4.2f}")
    for name in names:
        s = where[name]
        if s:
            print(f"{name}'s largest process (VmHWM {s['hwm']} kB), Rss by mapping:")
            for mapping, rss in s["rows"]:
                if rss:
                    print(f"  {mapping:60} {rss:6d} kB")
            if s.get("pages"):
                print(f"  the executable's pages by section (resident kB, of them written):")
                for name, (resident, written) in sorted(s["pages"].items(), key=lambda x: -x[1][0]):
                    print(f"    {name:40} {resident * 4:6d} kB {written * 4:6d} kB")


if __name__ == "__main__":
    main()
