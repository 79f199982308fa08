#!/usr/bin/env python3
"""Where connect, send a line, exit spends its time, step by step, from
the kernel's own trace (docs/package.md, "Start to exit, step by step").

forkchat in fork mode (the default), forkchat --mode poll (the same start,
no fork) and nc -N, in turn, RUNS rounds of bench.py's connect_send_exit
(one line on stdin, a pipe, against its Sink, a listener that reads to the
end and closes).
`perf record` takes the scheduler's and a few system calls' tracepoints
(exec, fork, connect's return, shutdown, exit_group, each process's last
switch off its CPU); the table gives each step's median. Tracing slows
every step a little: read the steps against each other and against nc's,
not against make bench's totals. As root, the page cache is dropped first
(bench.py's drop_page_cache), so that every program and library is read
back from the disk alike; one round is not counted.

Then the machine's prices for what a start does many times
(Tests/bench/machine_costs.c, compiled with cc): a CPUID instruction, a
read fault on a file mapping, a page mapped, a write fault.

Usage: start_steps.py FORKCHAT_BINARY [--runs N]   (root, perf, cc)
"""

import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

EVENTS = ["sched:sched_process_exec", "sched:sched_process_fork", "sched:sched_switch",
          "syscalls:sys_exit_connect", "syscalls:sys_enter_shutdown", "syscalls:sys_enter_exit_group"]

# (label, from, to): the points of one run, in the process they happen in
# ("child_" for the forked child's).
FORK_STEPS = [
    ("exec to connected", "exec", "connected"),
    ("connected to fork done (socket options, pipe, handlers, fork(2))", "connected", "forked"),
    ("fork to the child's shutdown (child: first run, stdin, send)", "forked", "child_shutdown"),
    ("child's shutdown to its exit_group", "child_shutdown", "child_exit_group"),
    ("child's exit_group to the child gone (its teardown)", "child_exit_group", "child_gone"),
    ("child gone to the parent's exit_group", "child_gone", "exit_group"),
    ("parent's exit_group to the parent gone", "exit_group", "gone"),
    ("exec to gone", "exec", "gone"),
]
ONE_PROCESS_STEPS = [
    ("exec to connected", "exec", "connected"),
    ("connected to shutdown (options, stdin, send)", "connected", "shutdown"),
    ("shutdown to exit_group (the peer's close)", "shutdown", "exit_group"),
    ("exit_group to gone", "exit_group", "gone"),
    ("exec to gone", "exec", "gone"),
]

LINE = re.compile(r"\s*(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)")


def record(tools, runs, workdir):
    """Runs every tool `runs` times in turn under perf; returns perf script's text."""
    script = os.path.join(workdir, "runs.py")
    with open(script, "w") as f:
        f.write(f"""import sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
import bench
sink = bench.Sink()
for r in range({runs} + 1):
    for name, argv in {tools!r}:
        bench.connect_send_exit((name, lambda port: argv + ["127.0.0.1", str(port)]), sink)
""")
    data = os.path.join(workdir, "perf.data")
    events = sum((["-e", e] for e in EVENTS), [])
    subprocess.run(["perf", "record", "-q", "-a", "-o", data] + events + [sys.executable, script],
                   check=True, stdout=subprocess.DEVNULL)
    return subprocess.run(["perf", "script", "-i", data, "-F", "pid,time,event,trace"],
                          check=True, capture_output=True, text=True).stdout


def points(text, programs):
    """One dict of named times (µs) per run, in order, for each program."""
    runs = []
    owner = {}  # pid -> (run, prefix)
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        pid, t, event, rest = int(m.group(1)), float(m.group(2)) * 1e6, m.group(3), m.group(4)
        if event == "sched:sched_process_exec":
            name = re.search(r"filename=(\S+)", rest).group(1)
            if name in programs:
                run = {"program": name, "exec": t}
                runs.append(run)
                owner[pid] = (run, "")
            continue
        if event == "sched:sched_process_fork":
            parent = int(re.search(r" pid=(\d+)", rest).group(1))
            child = int(re.search(r"child_pid=(\d+)", rest).group(1))
            if parent in owner and not owner[parent][1]:
                owner[parent][0]["forked"] = t
                owner[child] = (owner[parent][0], "child_")
            continue
        if event == "sched:sched_switch":
            prev = int(re.search(r"prev_pid=(\d+)", rest).group(1))
            if prev in owner and re.search(r"prev_state=[XZ]", rest):
                run, prefix = owner[prev]
                run[prefix + "gone"] = t
            continue
        if pid not in owner:
            continue
        run, prefix = owner[pid]
        key = {"syscalls:sys_exit_connect": "connected", "syscalls:sys_enter_shutdown": "shutdown",
               "syscalls:sys_enter_exit_group": "exit_group"}[event]
        if key == "connected" and prefix + "shutdown" not in run:
            run[prefix + key] = t  # the last connect(2) before the shutdown: nc tries nscd's socket first
        else:
            run.setdefault(prefix + key, t)
    return runs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("forkchat")
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    forkchat = os.path.abspath(args.forkchat)
    nc = shutil.which("nc")
    tools = [("fork", [forkchat, "connect"]), ("poll", [forkchat, "connect", "--mode", "poll"]),
             ("nc", [nc, "-N"])]
    with tempfile.TemporaryDirectory() as workdir:
        page_cache = bench.drop_page_cache()
        runs = points(record(tools, args.runs, workdir), {forkchat, nc})
        costs = None
        if shutil.which("cc"):
            helper = os.path.join(workdir, "machine_costs")
            source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "machine_costs.c")
            subprocess.run(["cc", "-O2", "-o", helper, source], check=True)
            costs = subprocess.run([helper, forkchat], check=True, capture_output=True, text=True).stdout
    # A forkchat run that forked is the fork mode's; one that did not, poll's.
    by_tool = collections.defaultdict(list)
    for run in runs:
        by_tool["nc" if run["program"] == nc else "fork" if "forked" in run else "poll"].append(run)
    print(f"Linux {os.uname().release}, {args.runs} rounds (one more not counted), page cache {page_cache}; "
          f"medians, µs, under perf")
    for name, steps in (("fork", FORK_STEPS), ("poll", ONE_PROCESS_STEPS), ("nc", ONE_PROCESS_STEPS)):
        counted = by_tool[name][1:]
        print(f"\n| {dict(fork='forkchat connect', poll='forkchat connect --mode poll', nc='nc -N')[name]} | µs |")
        print("|---|---:|")
        for label, start, end in steps:
            values = [r[end] - r[start] for r in counted if start in r and end in r]
            shown = f"{statistics.median(values):.0f}" if values else "-"
            print(f"| {label} | {shown} |")
    if costs:
        print("\n| one ... costs | µs |\n|---|---:|")
        for line in costs.splitlines():
            what, value = line.rsplit(" ", 1)
            print(f"| {what} | {value} |")


if __name__ == "__main__":
    main()
