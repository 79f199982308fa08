#!/usr/bin/env python3
"""make bench-room: forkchat room against the course's threaded Python relay.

For 10, 100 and 500 clients, each server is started in turn, pass after
pass (forkchat, Python, forkchat, Python ...), so that whatever else the
machine does falls on both alike. In a pass:

- N clients connect to 127.0.0.1 and everything the server sends on joining
  (greetings, join notices) is read until the room is quiet;
- fan-out latency: client r % N sends a 12-byte line; the time until every
  other client has read it is one sample (the harness reads the N-1 sockets
  one after the other, blocking, so the last read returns right after the
  last socket gets the line); rounds are 2 ms apart;
- memory: the proportional set size (PSS, /proc/PID/smaps_rollup) of every
  process of the server (forkchat: hub, spawner, one reader per client;
  Python: one process, a thread per client), before any client and with N
  clients; per client = (PSS with N - PSS with none) / N.

Then 1000 clients are held by forkchat room (and, for comparison, by the
Python relay): all connect and are greeted, one more is refused with "room
full" (forkchat), and 20 lines are fanned out to the 999 others.

Writes docs/room-benchmarks.md.

Usage: room_bench.py FORKCHAT_BINARY [--quick] [--out FILE]
"""

import argparse
import datetime
import os
import platform
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RELAY = os.path.join(HERE, "python_relay.py")


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout("the benchmark step took too long")


# The helpers the chat benchmark already has: a free port, waiting for a
# listener without connecting to it, a process and its descendants.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import free_port, process_tree, wait_listening  # noqa: E402


def pss_kib(pid):
    """PSS of a process and all its descendants, in KiB."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Server:
    def __init__(self, kind, forkchat, max_clients=1000):
        self.kind = kind
        self.port = free_port()
        if kind == "forkchat":
            argv = [forkchat, "room", str(self.port), "--bind", "127.0.0.1", "--max-clients", str(max_clients)]
        else:
            argv = [sys.executable, RELAY, str(self.port), "--bind", "127.0.0.1"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_listening(self.port)
        time.sleep(0.05)
        self.base_pss = pss_kib(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def connect_all(port, count):
    clients = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        clients.append(s)
    return clients


def drain(clients, quiet=0.3, limit=60.0):
    """Reads whatever the server sends until it has been quiet for `quiet` s."""
    poller = select.epoll()
    by_fd = {}
    for s in clients:
        s.setblocking(False)
        poller.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
    last = time.monotonic()
    end = last + limit
    received = {}
    while time.monotonic() - last < quiet and time.monotonic() < end:
        for fd, _ in poller.poll(0.05, 4096):
            try:
                data = by_fd[fd].recv(1 << 20)
            except BlockingIOError:
                continue
            if data:
                received[fd] = received.get(fd, b"") + data
                last = time.monotonic()
    poller.close()
    for s in clients:
        s.setblocking(True)
    return received


def fan_out(clients, rounds, offset=0):
    """Latencies (s) of `rounds` fan-outs: the time from one client's send
    until every other client has read the line."""
    fds = [s.fileno() for s in clients]
    samples = []
    read = os.read
    for r in range(rounds):
        index = (r + offset) % len(clients)
        message = b"bench %d\n" % (r + offset)
        others = fds[:index] + fds[index + 1:]
        start = time.perf_counter()
        clients[index].sendall(message)
        for fd in others:
            data = read(fd, 65536)
            while message not in data:
                data += read(fd, 65536)
        samples.append(time.perf_counter() - start)
        time.sleep(0.002)
    return samples


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run_pass(kind, forkchat, count, rounds, offset):
    server = Server(kind, forkchat)
    try:
        clients = connect_all(server.port, count)
        drain(clients)
        pss = pss_kib(server.proc.pid)
        samples = fan_out(clients, rounds, offset)
        for s in clients:
            s.close()
        return samples, (pss - server.base_pss) / count, pss
    finally:
        server.stop()


def hold(kind, forkchat, count=1000, rounds=20):
    """Connects `count` clients and checks every one is in (greeted, or for
    the relay simply connected), then fans out `rounds` lines."""
    server = Server(kind, forkchat, max_clients=count)
    result = {"kind": kind}
    try:
        started = time.monotonic()
        clients = connect_all(server.port, count)
        received = drain(clients, quiet=0.5)
        result["join_s"] = time.monotonic() - started
        if kind == "forkchat":
            welcomed = sum(1 for s in clients if received.get(s.fileno(), b"").startswith(b"* welcome"))
            result["welcomed"] = welcomed
            extra = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            extra.settimeout(5)
            result["refused"] = extra.recv(200).decode(errors="replace").strip()
            extra.close()
            result["processes"] = len(process_tree(server.proc.pid))
        result["pss_mib"] = pss_kib(server.proc.pid) / 1024
        samples = fan_out(clients, rounds)
        result["p50_ms"] = percentile(samples, 50) * 1000
        result["p99_ms"] = percentile(samples, 99) * 1000
        for s in clients:
            s.close()
        result["ok"] = True
    except (OSError, Timeout, RuntimeError) as error:
        result["ok"] = False
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        server.stop()
    return result


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return f"{os.cpu_count()} cores ({model}), {mem_kib / 1024 / 1024:.0f} GiB, Linux {platform.release()}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("forkchat")
    parser.add_argument("--quick", action="store_true", help="fewer passes and rounds")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "..", "docs", "room-benchmarks.md"))
    args = parser.parse_args()
    forkchat = os.path.abspath(args.forkchat)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    signal.signal(signal.SIGALRM, on_alarm)

    sizes = [10, 100, 500]
    passes = 2 if args.quick else 3
    rounds = {10: 100, 100: 100, 500: 40} if args.quick else {10: 300, 100: 200, 500: 100}
    kinds = ["forkchat", "python"]
    results = {(k, n): {"samples": [], "per_client": [], "total": []} for k in kinds for n in sizes}
    for n in sizes:
        for p in range(passes):
            for kind in kinds:
                signal.alarm(300)
                samples, per_client, total = run_pass(kind, forkchat, n, rounds[n], offset=p * rounds[n])
                signal.alarm(0)
                r = results[(kind, n)]
                r["samples"] += samples
                r["per_client"].append(per_client)
                r["total"].append(total)
                print(f"{kind:8} {n:4} clients pass {p + 1}: p50 {percentile(samples, 50) * 1000:.2f} ms, "
                      f"p99 {percentile(samples, 99) * 1000:.2f} ms, PSS {total / 1024:.1f} MiB "
                      f"({per_client:.0f} KiB per client)", flush=True)
    held = []
    for kind in kinds:
        signal.alarm(300)
        try:
            held.append(hold(kind, forkchat))
        except Timeout as error:
            held.append({"kind": kind, "ok": False, "error": str(error)})
        signal.alarm(0)
        print(held[-1], flush=True)

    lines = [
        "# forkchat room: benchmarks",
        "",
        f"Written by `make bench-room` (`Tests/bench/room_bench.py`) on {datetime.date.today().isoformat()}:",
        f"{machine()}; Python {platform.python_version()}.",
        "",
        "forkchat room (`forkchat room PORT --bind 127.0.0.1`, release build) against the course's",
        "threaded relay (`Tests/bench/python_relay.py`: one thread per client, `sendall` to every",
        "other client under one lock). The two servers run in turn, pass after pass, in the same",
        f"invocation ({passes} passes per size). Clients are sockets of the benchmark process on",
        "127.0.0.1.",
        "",
        "- fan-out: one client sends a 12-byte line; the time until every other client has read it",
        "  (the harness reads the other sockets one after the other, blocking, so it measures when",
        "  the last one has the line, plus a microsecond or two per socket);",
        f"  {', '.join(f'{rounds[n] * passes} lines with {n} clients' for n in sizes)}, 2 ms apart;",
        "- PSS: proportional set size (`/proc/PID/smaps_rollup`) of all the server's processes",
        "  (forkchat: hub, spawner and one reader per client; Python: one process), with the",
        "  clients connected; per client: (PSS with N clients - PSS with none) / N.",
        "",
        "| clients | measure | forkchat room | Python relay |",
        "|---|---|---|---|",
    ]
    for n in sizes:
        f, p = results[("forkchat", n)], results[("python", n)]
        lines.append(f"| {n} | fan-out p50, ms | {percentile(f['samples'], 50) * 1000:.2f} | "
                     f"{percentile(p['samples'], 50) * 1000:.2f} |")
        lines.append(f"| {n} | fan-out p99, ms | {percentile(f['samples'], 99) * 1000:.2f} | "
                     f"{percentile(p['samples'], 99) * 1000:.2f} |")
        lines.append(f"| {n} | PSS total, MiB | {statistics.median(f['total']) / 1024:.1f} | "
                     f"{statistics.median(p['total']) / 1024:.1f} |")
        lines.append(f"| {n} | PSS per client, KiB | {statistics.median(f['per_client']):.0f} | "
                     f"{statistics.median(p['per_client']):.0f} |")
    lines += ["", "## 1000 clients held", ""]
    lines += ["| server | all in | join time, s | processes | PSS total, MiB | fan-out to 999 p50 / p99, ms | 1001st client |",
              "|---|---|---|---|---|---|---|"]
    for h in held:
        if not h.get("ok"):
            lines.append(f"| {h['kind']} | no: {h.get('error', '?')} | | | | | |")
            continue
        name = "forkchat room" if h["kind"] == "forkchat" else "Python relay"
        allin = f"{h['welcomed']} greeted" if "welcomed" in h else "1000 connected"
        lines.append(f"| {name} | {allin} | {h['join_s']:.2f} | {h.get('processes', 1)} | {h['pss_mib']:.1f} | "
                     f"{h['p50_ms']:.2f} / {h['p99_ms']:.2f} | {h.get('refused', 'accepted (no limit)')} |")
    lines.append("")
    text = "\n".join(lines)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
