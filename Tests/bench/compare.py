#!/usr/bin/env python3
"""make compare: the four modes of forkchat side by side, measured on this
machine, like the table in Stevens' UNIX Network Programming that times the
stop-and-wait, select, fork and threads versions of the same client.

For each mode (fork, threads, poll, alternate), in alternating rounds:
- processes and threads: counted in /proc on both sides of a live chat;
- syscalls per line: `strace -f -c` on the connecting side while lines are
  exchanged one at a time each way, divided by the lines it sent and got;
- line latency: a line written to the client's stdin until it is read from
  the server's stdout (p50, p99);
- Stevens' test: a file of lines sent by the client to `forkchat listen
  --echo`, until every line has come back (a stop-and-wait client waits
  for each echo before it sends the next line);
- bulk throughput: 256 MiB client → server (not for alternate, which needs
  an answer to every line).
Writes docs/modes.md.

Usage: compare.py FORKCHAT_BINARY [--quick]
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402  (the same harness pieces)

MODES = ["fork", "threads", "poll", "alternate"]


def start_pair(forkchat, mode, client_prefix=()):
    port = bench.free_port()
    pipe = subprocess.PIPE
    server = subprocess.Popen([forkchat, "listen", "--bind", "127.0.0.1", str(port), "--mode", mode],
                              stdin=pipe, stdout=pipe, stderr=subprocess.DEVNULL)
    bench.wait_listening(port)
    client = subprocess.Popen([*client_prefix, forkchat, "connect", "127.0.0.1", str(port), "--mode", mode],
                              stdin=pipe, stdout=pipe, stderr=subprocess.DEVNULL)
    return server, client


def stop_pair(server, client):
    for p in (client, server):
        p.stdin.close()
    for p in (client, server):
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stdout.close()


def exchange(server, client, count, samples=None):
    """Lines one at a time: client → server, then server → client (the
    order the alternate mode needs; the others do not care)."""
    buffers = {server.stdout.fileno(): b"", client.stdout.fileno(): b""}
    for i in range(count):
        for writer, reader in ((client, server), (server, client)):
            line = b"line %d %s" % (i, b"x" * 40)
            fd = reader.stdout.fileno()
            start = time.perf_counter()
            os.write(writer.stdin.fileno(), line + b"\n")
            got, buffers[fd] = bench.read_line(fd, buffers[fd])
            if samples is not None and writer is client:
                samples.append(time.perf_counter() - start)
            assert got == line, (got, line)


def count_tasks(pid):
    pids = bench.process_tree(pid)
    threads = sum(len(os.listdir(f"/proc/{p}/task")) for p in pids if os.path.exists(f"/proc/{p}/task"))
    return len(pids), threads


def processes_and_threads(forkchat, mode):
    server, client = start_pair(forkchat, mode)
    try:
        exchange(server, client, 3)  # the chat is live both ways
        return count_tasks(client.pid)
    finally:
        stop_pair(server, client)


def syscalls_per_line(forkchat, mode, lines):
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        totals = []
        for count in (0, lines):  # the difference leaves out start and end
            server, client = start_pair(forkchat, mode, ("strace", "-f", "-c", "-o", out.name))
            try:
                exchange(server, client, count)
            finally:
                stop_pair(server, client)
            with open(out.name) as f:
                # "100.00    0.000581           2       227        18 total": calls
                # is the fourth column (errors, the fifth, may be empty).
                total = re.search(r"^\s*\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$", f.read(), re.M)
            totals.append(int(total.group(1)))
        return (totals[1] - totals[0]) / (2 * lines)


def latency(forkchat, mode, lines):
    samples = []
    server, client = start_pair(forkchat, mode)
    try:
        exchange(server, client, 10)
        exchange(server, client, lines, samples)
    finally:
        stop_pair(server, client)
    return samples


def stevens(forkchat, mode, lines_file, size):
    """The client sends a file of lines to an echo server and reads them all
    back; seconds until it has exited."""
    port = bench.free_port()
    server = subprocess.Popen([forkchat, "listen", "--echo", "--bind", "127.0.0.1", str(port)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench.wait_listening(port)
    with open(lines_file, "rb") as source, tempfile.TemporaryFile() as sink:
        start = time.perf_counter()
        client = subprocess.run([forkchat, "connect", "127.0.0.1", str(port), "--mode", mode],
                                stdin=source, stdout=sink, stderr=subprocess.DEVNULL, timeout=300)
        elapsed = time.perf_counter() - start
        received = sink.seek(0, os.SEEK_END)
    server.wait(timeout=20)
    assert client.returncode == 0 and received == size, (mode, client.returncode, received, size)
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("forkchat")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "docs"))
    args = parser.parse_args()
    if not shutil.which("strace"):
        sys.exit("compare: strace is missing (apt-get install strace)")
    forkchat = os.path.abspath(args.forkchat)
    rounds = 1 if args.quick else 3
    lines = 50 if args.quick else 1000
    stevens_lines = 2000 if args.quick else 20000
    bulk_size = 32 * bench.MiB if args.quick else 256 * bench.MiB

    lines_file = tempfile.NamedTemporaryFile(delete=False)
    for i in range(stevens_lines):
        lines_file.write(b"%06d %s\n" % (i, b"abcdefghij" * 9))
    lines_file.close()
    stevens_size = os.path.getsize(lines_file.name)

    results = {m: {"latency": [], "stevens": [], "bulk": []} for m in MODES}
    for m in MODES:
        results[m]["tasks"] = processes_and_threads(forkchat, m)
        results[m]["syscalls"] = syscalls_per_line(forkchat, m, lines)
        print(f"  {m}: processes, threads {results[m]['tasks']}, syscalls/line {results[m]['syscalls']:.1f}",
              flush=True)
    for r in range(rounds):
        for m in MODES:
            results[m]["latency"] += latency(forkchat, m, lines)
            results[m]["stevens"].append(stevens(forkchat, m, lines_file.name, stevens_size))
            if m != "alternate":
                memory = []
                tool = (
                    lambda p, m=m: [forkchat, "listen", "--bind", "127.0.0.1", str(p), "--mode", m],
                    lambda p, m=m: [forkchat, "connect", "127.0.0.1", str(p), "--mode", m],
                )
                seconds = bench.bulk(tool, bulk_size, 0, memory)
                results[m]["bulk"].append(bulk_size / seconds / 1e6)
            print(f"  round {r + 1} {m}: stevens {results[m]['stevens'][-1]:.3f} s", flush=True)
    os.unlink(lines_file.name)

    rows = ["| mode | processes | threads | syscalls per line | line latency p50 | p99 | "
            f"{stevens_lines} lines via an echo server | bulk {bulk_size // bench.MiB} MiB →, MB/s |",
            "|---|---|---|---|---|---|---|---|"]
    for m in MODES:
        r = results[m]
        p50 = statistics.median(r["latency"]) * 1e6
        p99 = bench.percentile(r["latency"], 99) * 1e6
        bulk = f"{statistics.median(r['bulk']):.0f}" if r["bulk"] else "n/a (needs an answer per line)"
        rows.append(f"| {m} | {r['tasks'][0]} | {r['tasks'][1]} | {r['syscalls']:.1f} | {p50:.0f} µs | "
                    f"{p99:.0f} µs | {statistics.median(r['stevens']) * 1e3:.0f} ms | {bulk} |")
    table = "\n".join(rows)
    print()
    print(table)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    report = f"""# The four modes, measured

Written by `make compare` (`Tests/bench/compare.py`) on {datetime.date.today().isoformat()}:
{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, the release binary.
{"**Quick run (--quick): small sizes; not for comparison.**" if args.quick else ""}

The same chat, driven four ways (`--mode`), in the spirit of the table in
Stevens' *UNIX Network Programming* that times the stop-and-wait, select,
fork and threads versions of one echo client. Measures alternate between
the modes round by round ({rounds} rounds).

- **processes, threads**: on the connecting side of a live chat (/proc).
- **syscalls per line**: `strace -f -c` on the connecting side while
  {lines} lines go each way one at a time, minus a run with none; divided by
  the lines it sent and received. poll(2), read(2), write(2), splice(2) ... all count.
- **line latency**: a 50-byte line written to the client's stdin until the
  server prints it, p50 and p99 over {lines * rounds} lines.
- **{stevens_lines} lines via an echo server**: the client sends a file of
  {stevens_lines} 100-byte lines ({stevens_size // 1000} kB) to `forkchat listen --echo` and
  reads them all back; time until the client exits. This is Stevens' test:
  the stop-and-wait client (alternate) pays one round trip per line, the
  others keep the pipe full in both directions.
- **bulk**: {bulk_size // bench.MiB} MiB client → server through pipes, as in `make bench`.

{table}

What to read in it: fork and threads use two schedulable entities per side
(two processes, or two threads of one process). The fork child needs only
read(2) and write(2) per line sent; the threads sender also polls its stop
pipe before each read (a thread cannot be killed from outside, so it must
look for the request), and poll pays a poll(2) call for every wake-up in
both directions.
Alternate costs as few calls per line as fork (its send turn polls stdin
and the socket, so that a peer that ends meanwhile is noticed) and is as
quick as any for one line at a time, but it cannot send while it waits: a
file of lines costs one round trip per line, the stop-and-wait column of
Stevens' table. Line latencies less than about 15 µs apart are within this
machine's noise: three runs in a row on 2026-12-02 moved fork's p50
between 47 and 59 µs, poll's between 38 and 51 µs.
"""
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "modes.md"), "w") as f:
        f.write(report)
    print(f"\nwrote {os.path.join(args.out, 'modes.md')}")


if __name__ == "__main__":
    main()
