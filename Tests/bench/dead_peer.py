#!/usr/bin/env python3
"""A vanished peer, side by side: seconds until it is noticed.

For forkchat (its default --dead-peer 60), nc -N, socat, and socat told the
same as forkchat (keepalive,keepidle=30,keepintvl=6,keepcnt=5 and
TCP_USER_TIMEOUT 60000 ms through setsockopt-int=6:18:60000): each tool
chats with a copy of itself across two network namespaces joined by a veth
pair (Tests/e2e/netns.py), listening or connecting, idle or busy; then the
peer's cable is pulled (its end of the link set down) and we wait until the
tool ends, at most --cap seconds. Busy: 4 MiB are written to the tool's
stdin right after the cable is pulled, so its data stays unacknowledged.

Every case runs at the same time, each in its own pair of namespaces, with
the kernel's own settings (net.ipv4.tcp_retries2 = 15): one run takes
about --cap seconds. One second before the cables are pulled, each peer
sends a line: the silence starts then, for every case alike. Needs root.

    python3 Tests/bench/dead_peer.py .build/release/forkchat [--cap 1000]

Prints a Markdown table (docs/design.md shows the last run's).
"""

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from netns import ADDRESS, TwoHosts  # noqa: E402

PORT = "9000"
SOCAT_KEEPALIVE = ",keepalive,keepidle=30,keepintvl=6,keepcnt=5,setsockopt-int=6:18:60000"


def commands(tool, forkchat):
    """(listen argv, connect argv) for a tool, host a listening or connecting."""
    nc, socat = shutil.which("nc"), shutil.which("socat")
    if tool == "forkchat":
        return (lambda me: [forkchat, "listen", PORT, "--bind", me],
                lambda other: [forkchat, "connect", other, PORT])
    if tool == "nc -N":
        return lambda me: [nc, "-N", "-l", me, PORT], lambda other: [nc, "-N", other, PORT]
    options = SOCAT_KEEPALIVE if tool == "socat keepalive" else ""
    return (lambda me: [socat, "-", f"TCP-LISTEN:{PORT},bind={me},reuseaddr{options}"],
            lambda other: [socat, "-", f"TCP:{other}:{PORT}{options}"])


class Case:
    def __init__(self, ip, tool, role, load, forkchat):
        self.tool, self.role, self.load = tool, role, load
        self.hosts = TwoHosts(ip)
        listen, connect = commands(tool, forkchat)
        if role == "listen":
            mine, theirs = listen(ADDRESS["a"]), connect(ADDRESS["a"])
        else:
            mine, theirs = connect(ADDRESS["b"]), listen(ADDRESS["b"])
        first, second = (("a", mine), ("b", theirs)) if role == "listen" else (("b", theirs), ("a", mine))
        self.procs = {}
        for host, argv in (first, second):
            self.procs[host] = subprocess.Popen(
                [*self.hosts.prefix(host), *argv], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
            time.sleep(0.3)  # the listener is up before the other connects
        self.pulled = self.ended = None
        self.err = b""

    def connected(self) -> bool:
        out = self.hosts.run("a", ["ss", "-tn", "state", "established"])
        return f":{PORT}" in out

    def ping(self):
        """A line from the peer: the last byte received before the cable goes."""
        self.procs["b"].stdin.write(b"ping\n")
        self.procs["b"].stdin.flush()

    def pull(self):
        self.pulled = time.monotonic()
        self.hosts.pull_cable("b")
        if self.load == "busy":
            threading.Thread(target=self._feed, daemon=True).start()

    def _feed(self):
        try:
            self.procs["a"].stdin.write(b"x" * (4 << 20))
            self.procs["a"].stdin.flush()
        except OSError:
            pass

    def poll(self):
        if self.ended is None and self.procs["a"].poll() is not None:
            self.ended = time.monotonic()

    def finish(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
            proc.wait()
        self.err = self.procs["a"].stderr.read()
        self.hosts.close()

    def row(self, cap):
        took = f"{self.ended - self.pulled:.1f}" if self.ended else f"not in {cap:g}"
        lines = [line for line in self.err.decode(errors="replace").splitlines() if line.strip()]
        said = lines[-1] if self.ended and lines else ""
        if self.ended:
            said = f"exit {self.procs['a'].returncode}: " + (f"`{said}`" if said else "nothing")
        return took, said


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("forkchat")
    parser.add_argument("--cap", type=float, default=1000.0)
    args = parser.parse_args()
    forkchat = os.path.abspath(args.forkchat)
    ip = shutil.which("ip")
    if os.geteuid() != 0 or not ip:
        sys.exit("dead_peer.py: needs root and ip(8) (network namespaces)")
    for tool in ("nc", "socat"):
        if not shutil.which(tool):
            sys.exit(f"dead_peer.py: {tool} is not installed")
    tools = ["forkchat", "nc -N", "socat", "socat keepalive"]
    cases = [Case(ip, tool, role, load, forkchat)
             for tool in tools for load in ("idle", "busy") for role in ("listen", "connect")]
    try:
        time.sleep(1)
        missing = [f"{c.tool} {c.role}" for c in cases if not c.connected()]
        if missing:
            sys.exit(f"dead_peer.py: not connected: {missing}")
        for case in cases:
            case.ping()
        time.sleep(1)  # delivered and acknowledged: the silence starts now, for every case
        for case in cases:
            case.pull()
        deadline = time.monotonic() + args.cap
        while time.monotonic() < deadline and any(c.ended is None for c in cases):
            for case in cases:
                case.poll()
            time.sleep(0.1)
    finally:
        for case in cases:
            case.finish()

    print(f"Run of {datetime.date.today()} on {platform.node()}, Linux {platform.release()}, "
          f"net.ipv4.tcp_retries2 = 15, cap {args.cap:g} s.\n")
    print("| tool | role | idle: noticed after, s | busy: noticed after, s | busy: exit status, what it said |")
    print("|---|---|---|---|---|")
    for tool in tools:
        for role in ("listen", "connect"):
            idle = next(c for c in cases if (c.tool, c.role, c.load) == (tool, role, "idle"))
            busy = next(c for c in cases if (c.tool, c.role, c.load) == (tool, role, "busy"))
            idle_took, idle_said = idle.row(args.cap)
            busy_took, busy_said = busy.row(args.cap)
            print(f"| {tool} | {role} | {idle_took} | {busy_took} | {busy_said or '(nothing)'} |")
    print()
    for case in cases:
        took, said = case.row(args.cap)
        if case.load == "idle" and said:
            print(f"- idle, {case.tool} {case.role}: {said}")


if __name__ == "__main__":
    main()
