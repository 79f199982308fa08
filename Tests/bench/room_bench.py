#!/usr/bin/env python3
"""make bench-room: forkchat room against the course's threaded Python relay
and ngircd, a production IRC server.

The three servers run in turn, pass after pass (forkchat, Python, ngircd,
forkchat ...), so that whatever else the machine does falls on all alike.
Clients are sockets of this process on 127.0.0.1; with ngircd they speak
IRC and join one channel (ngircd_server.py).

- fan-out, with 10, 100, 500 and 999 clients: client r % N sends a short
  line; the time until every other client has read it (the other
  sockets are read one after the other, blocking, so the last read
  returns right after the last socket gets the line); rounds 2 ms apart,
  every client acknowledging at once (TCP_QUICKACK) between rounds; with
  999 clients also without that (delayed ACKs, as a person's client),
  pass for pass in the same run;
- memory, with 500 clients: the proportional set size (PSS,
  /proc/PID/smaps_rollup) of every process of the server, minus the same
  before any client, per client, before and after the fan-out; the
  kernel's own memory for the server's processes (page tables and kernel
  stacks, /proc/meminfo), per client; and for forkchat, where a reader's
  pages went: each reader's private KiB per mapping (/proc/PID/smaps);
  then the same once every client has sent three lines (plain; accents,
  control characters, bad UTF-8; 5000 bytes, cut) and read the others';
- the burst: 40 clients each send 80 lines of 450 bytes at the same moment,
  while reading what they receive, and one more client only reads: lines
  delivered, clients the server closed, time until every reader has every
  line (at most 60 s);
- 1000 clients held: all connect and are in, one more is refused (forkchat),
  PSS per client, and 60 lines are fanned out to the 999 others; then,
  untimed, the system calls of the server's main process per line
  (strace -c); then every client sends a line, and PSS per client again.

Writes docs/room-benchmarks.md.

Usage: room_bench.py FORKCHAT_BINARY [--quick] [--only N ...] [--out FILE]

--only N: only the fan-out passes with N clients, printed, no report
(development).
"""

import argparse
import datetime
import os
import platform
import re
import resource
import select
import signal
import socket
import statistics
import textwrap
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RELAY = os.path.join(HERE, "python_relay.py")

# The helpers the chat benchmark already has: a free port, waiting for a
# listener without connecting to it, a process and its descendants.
sys.path.insert(0, HERE)
from bench import free_port, process_tree, wait_listening  # noqa: E402
import ngircd_server  # noqa: E402

KINDS = ["forkchat", "python", "ngircd"]
NAMES = {"forkchat": "forkchat room", "python": "Python relay", "ngircd": "ngircd"}


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout("the benchmark step took too long")


# ---------------------------------------------------------------------------
# The servers, and how a client speaks to each


class Server:
    """One of the three servers on a free port. `hello(i)`: what client i
    sends first; `ready`: what it reads once it is in (None: connected is
    in); `frame(text)`: a line of text to everyone else."""

    def __init__(self, kind, forkchat, max_clients=1000, relaxed=True):
        self.kind = kind
        self.port = free_port()
        self.relaxed = relaxed
        if kind == "ngircd":
            self.ngircd = ngircd_server.Ngircd(self.port)
            self.proc = self.ngircd.proc
        else:
            argv = ([forkchat, "room", str(self.port), "--bind", "127.0.0.1", "--max-clients", str(max_clients)]
                    if kind == "forkchat" else [sys.executable, RELAY, str(self.port), "--bind", "127.0.0.1"])
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        wait_listening(self.port)
        time.sleep(0.05)
        self.base_pss = pss_kib(self.pid)
        self.base_kernel = kernel_kib()

    def hello(self, index):
        return ngircd_server.register(f"c{index}", self.relaxed) if self.kind == "ngircd" else b""

    @property
    def ready(self):
        return {"forkchat": b"* welcome", "python": None, "ngircd": ngircd_server.JOINED}[self.kind]

    def all_in(self, reading, fresh, count):
        """Whether the `fresh` clients are in: they have read `ready`; for
        the relay, which says nothing, it runs a thread for each of the
        `count` clients (its accept loop appends a client to its list before
        starting the client's thread)."""
        if self.ready:
            return all(self.ready in reading.data[s] for s in fresh)
        return len(os.listdir(f"/proc/{self.pid}/task")) >= count + 1

    def frame(self, text):
        return ngircd_server.privmsg(text) if self.kind == "ngircd" else text + b"\n"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.kind == "ngircd":
            self.ngircd.cleanup()


def pss_kib(pid):
    """PSS of a process and all its descendants, in KiB."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except OSError:
            pass
    return total


def kernel_kib():
    """The kernel's page tables and kernel stacks, machine-wide, in KiB: what
    each process costs beyond its PSS (other programs move it too)."""
    with open("/proc/meminfo") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith(("PageTables:", "KernelStack:")))


# ---------------------------------------------------------------------------
# Clients


class Reading:
    """Reads many sockets at once (epoll) into per-socket buffers."""

    def __init__(self, clients):
        self.poller = select.epoll()
        self.by_fd = {}
        self.data = {}
        self.closed = set()
        for s in clients:
            self.add(s)

    def add(self, s):
        s.setblocking(False)
        self.poller.register(s.fileno(), select.EPOLLIN)
        self.by_fd[s.fileno()] = s
        self.data[s] = bytearray()

    def turn(self, timeout=0.05):
        """One wait; returns whether anything came."""
        got = False
        for fd, _ in self.poller.poll(timeout, 4096):
            s = self.by_fd[fd]
            try:
                chunk = s.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed.add(s)
                self.poller.unregister(fd)
                continue
            self.data[s] += chunk
            got = True
        return got

    def close(self):
        self.poller.close()
        for s in self.by_fd.values():
            if s not in self.closed:
                s.setblocking(True)


def connect_all(server, count, batch=250, limit=120.0):
    """`count` clients, `batch` at a time, each one in (its `ready` line
    read) before the next batch connects; returns them."""
    clients = []
    reading = Reading([])
    end = time.monotonic() + limit
    try:
        while len(clients) < count:
            fresh = []
            for _ in range(min(batch, count - len(clients))):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                hello = server.hello(len(clients) + len(fresh))
                if hello:
                    s.sendall(hello)
                fresh.append(s)
                reading.add(s)
            clients += fresh
            while not server.all_in(reading, fresh, len(clients)):
                if time.monotonic() > end:
                    raise Timeout(f"{server.kind}: clients not in after {limit} s")
                reading.turn()
        return clients
    finally:
        reading.close()


def drain(clients, quiet=0.3, limit=60.0):
    """Reads whatever the server sends until it has been quiet for `quiet`
    s; returns {socket: bytes}."""
    reading = Reading(clients)
    last = time.monotonic()
    end = last + limit
    while time.monotonic() - last < quiet and time.monotonic() < end:
        if reading.turn():
            last = time.monotonic()
    reading.close()
    return reading.data


def fan_out(server, clients, rounds, offset=0, acknowledge=True):
    """Latencies (s) of `rounds` fan-outs: the time from one client's send
    until every other client has read the line. `acknowledge`: every
    client acknowledges at once between rounds (TCP_QUICKACK); else the
    kernel's delayed ACKs run as they do for a person's client."""
    fds = [s.fileno() for s in clients]
    samples = []
    read = os.read
    for r in range(rounds):
        index = (r + offset) % len(clients)
        mark = b"bench %d" % (r + offset)
        others = fds[:index] + fds[index + 1:]
        line = server.frame(mark)
        start = time.perf_counter()
        clients[index].sendall(line)
        for fd in others:
            data = read(fd, 65536)
            while mark not in data:
                data += read(fd, 65536)
        samples.append(time.perf_counter() - start)
        # Acknowledge now what was read (untimed): a server that leaves
        # Nagle's algorithm on (ngircd) would otherwise hold the next line
        # to each client until the client's delayed ACK of this one, up to
        # 40 ms, which a line every 2 ms makes the rule.
        if acknowledge:
            for s in clients:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        time.sleep(0.002)
    return samples


# What every client sends once the fan-out has run (the memory pass): a
# plain line, one with accents, control characters and bad UTF-8, and one
# longer than forkchat's limit of 4000 bytes, which forkchat cuts (for
# ngircd at IRC's limit of 512 bytes a line, as an IRC client cuts it).
SPOKEN_LINES = [
    b"spoke %d: a plain line",
    "spoke %d: café crème ✓ 😀 \x1b[31mred\x1b[0m \x07 \x9b".encode() + b" \xe6\xbc",
    b"spoke %d: long " + b"x" * 5000,
]
IRC_TEXT_BYTES = 400


def everyone_speaks(server, clients, lines, limit=120.0):
    """Every client sends `lines` (each with its number), reading what the
    server sends meanwhile; returns the fewest lines marked "spoke" that a
    client received (every other client's: (count - 1) * len(lines))."""
    mark = re.compile(rb"spoke (\d+): ")
    counts = {s.fileno(): 0 for s in clients}
    tails = {s.fileno(): b"" for s in clients}
    poller = select.epoll()
    for s in clients:
        s.setblocking(False)
        poller.register(s.fileno(), select.EPOLLIN)
    try:
        for i, s in enumerate(clients):
            for text in lines:
                text = text.replace(b"%d", b"%d" % i)
                if server.kind == "ngircd":
                    text = text[:IRC_TEXT_BYTES]
                data = server.frame(text)
                while data:  # a full socket: read what came meanwhile, then go on
                    try:
                        data = data[s.send(data):]
                    except BlockingIOError:
                        poller.poll(0.01)
            for fd, _ in poller.poll(0, 4096):
                tails[fd] = count_marks(fd, mark, counts, tails[fd])
        wanted = (len(clients) - 1) * len(lines)
        end = time.monotonic() + limit
        quiet = time.monotonic()
        while min(counts.values()) < wanted and time.monotonic() < end and time.monotonic() - quiet < 5:
            for fd, _ in poller.poll(0.05, 4096):
                tails[fd] = count_marks(fd, mark, counts, tails[fd])
                quiet = time.monotonic()
        return min(counts.values())
    finally:
        poller.close()
        for s in clients:
            s.setblocking(True)


def count_marks(fd, mark, counts, tail):
    """Reads what `fd` has, counting the marks in it (keeps no more than a
    mark's length of it: the 500 clients get 1 GB in all)."""
    try:
        chunk = os.read(fd, 1 << 20)
    except (BlockingIOError, OSError):
        return tail
    data = tail + chunk
    found = list(mark.finditer(data))
    counts[fd] += len(found)
    rest = data[found[-1].end():] if found else data
    return rest[-24:]


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------------------
# Measures


def reader_pids(server):
    """forkchat's reader processes: the spawner's children."""
    tree = process_tree(server.pid)
    return [p for p in tree if p != server.pid and parent_pid(p) != server.pid]


def parent_pid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def private_pages(pid):
    """{mapping: private KiB} of one process, from /proc/PID/smaps: the
    pages it maps alone (Private_Dirty + Private_Clean), by mapping (the
    binary's sections by permissions, [heap], [stack], anonymous)."""
    found = {}
    name = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                fields = line.split()
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    path = fields[5] if len(fields) > 5 else "anonymous"
                    name = f"{os.path.basename(path)} {fields[1]}" if path.startswith("/") else path
                elif fields[0] in ("Private_Dirty:", "Private_Clean:"):
                    found[name] = found.get(name, 0) + int(fields[1])
    except OSError:
        pass
    return {k: v for k, v in found.items() if v}


def reader_pages(server):
    """The median private KiB per mapping over every reader, and the median
    of their totals."""
    tables = [private_pages(p) for p in reader_pids(server)]
    tables = [t for t in tables if t]
    if not tables:
        return {}
    names = sorted({k for t in tables for k in t})
    medians = {k: statistics.median(t.get(k, 0) for t in tables) for k in names}
    medians["total"] = statistics.median(sum(t.values()) for t in tables)
    return {"readers": len(tables), "pages": medians}


def run_pass(kind, forkchat, count, rounds, offset, acknowledge=True, all_speak=False):
    server = Server(kind, forkchat)
    try:
        clients = connect_all(server, count)
        drain(clients)
        pss = pss_kib(server.pid)
        kernel = kernel_kib() - server.base_kernel
        idle = reader_pages(server) if kind == "forkchat" else {}
        samples = fan_out(server, clients, rounds, offset, acknowledge)
        drain(clients, quiet=0.1)
        spoke = reader_pages(server) if kind == "forkchat" else {}
        spoke_pss = pss_kib(server.pid)
        measured = {"samples": samples, "pss": pss, "per_client": (pss - server.base_pss) / count,
                    "kernel_per_client": kernel / count, "idle": idle, "spoke": spoke,
                    "per_client_after": (spoke_pss - server.base_pss) / count}
        if all_speak:
            measured["all_got"] = everyone_speaks(server, clients, SPOKEN_LINES)
            measured["all_wanted"] = (count - 1) * len(SPOKEN_LINES)
            drain(clients, quiet=0.2)
            measured["all_spoke"] = reader_pages(server) if kind == "forkchat" else {}
            measured["per_client_all_spoke"] = (pss_kib(server.pid) - server.base_pss) / count
        for s in clients:
            s.close()
        return measured
    finally:
        server.stop()


BURST_SENDERS, BURST_LINES, BURST_BYTES = 40, 80, 450
LINE_MARK = re.compile(rb"S(\d+) (\d\d\d) p+")


def burst(kind, forkchat, limit=60.0):
    """40 clients send 80 lines of 450 bytes each at once, reading as they
    go; one more only reads. Flood control as each server has it."""
    server = Server(kind, forkchat, relaxed=False)
    result = {"kind": kind}
    try:
        clients = connect_all(server, BURST_SENDERS + 1)
        drain(clients)
        senders, listener = clients[:-1], clients[-1]
        outgoing = {}
        for i, s in enumerate(senders):
            lines = [(b"S%d %03d " % (i, k)).ljust(BURST_BYTES, b"p") for k in range(BURST_LINES)]
            outgoing[s] = memoryview(b"".join(server.frame(line) for line in lines))
        wanted = {s: BURST_LINES * (BURST_SENDERS - 1) for s in senders}
        wanted[listener] = BURST_LINES * BURST_SENDERS
        counts = {s: 0 for s in clients}
        reading = Reading(clients)
        writer = select.epoll()
        for s in senders:
            writer.register(s.fileno(), select.EPOLLOUT)
        by_fd = {s.fileno(): s for s in senders}
        started = time.monotonic()
        done_at = None
        while time.monotonic() - started < limit:
            for fd, _ in writer.poll(0, 64):
                s = by_fd[fd]
                try:
                    sent = s.send(outgoing[s][:16384])
                except (BlockingIOError, OSError):
                    sent = 0
                outgoing[s] = outgoing[s][sent:]
                if not outgoing[s]:
                    writer.unregister(fd)
            reading.turn(0.005)
            for s in clients:  # count whole lines, and keep only the unfinished one
                buf = reading.data[s]
                end = buf.rfind(b"\n")
                if end >= 0:
                    counts[s] += len(LINE_MARK.findall(bytes(buf[:end + 1])))
                    del buf[:end + 1]
            if all(counts[s] >= wanted[s] for s in clients if s not in reading.closed):
                done_at = time.monotonic() - started
                break
        writer.close()
        reading.close()
        result.update({
            "listener": counts[listener], "listener_of": wanted[listener],
            "fewest": min(counts[s] for s in senders if s not in reading.closed) if len(reading.closed) < len(senders) else 0,
            "fewest_of": BURST_LINES * (BURST_SENDERS - 1),
            "closed": len(reading.closed), "seconds": done_at, "limit": limit, "ok": True,
        })
        for s in clients:
            s.close()
    except (OSError, Timeout) as error:
        result.update({"ok": False, "error": f"{type(error).__name__}: {error}"})
    finally:
        server.stop()
    return result


def hold(kind, forkchat, count=1000, rounds=60):
    """Connects `count` clients, checks that every one is in, tries one
    more, then fans out `rounds` lines."""
    server = Server(kind, forkchat, max_clients=count)
    result = {"kind": kind, "count": count}
    try:
        started = time.monotonic()
        clients = connect_all(server, count)
        drain(clients, quiet=0.5)
        result["join_s"] = time.monotonic() - started
        result["in"] = f"{count} in" if server.ready else f"{count} connected"
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        extra.settimeout(2)
        if server.hello(count):
            extra.sendall(server.hello(count))
        try:
            answer = extra.recv(300).decode(errors="replace").strip().splitlines()
            result["extra"] = answer[0] if kind == "forkchat" and answer else "accepted (no limit)"
        except socket.timeout:
            result["extra"] = "accepted (no limit)"
        extra.close()
        result["processes"] = len(process_tree(server.pid))
        pss = pss_kib(server.pid)
        result["pss_mib"] = pss / 1024
        result["per_client"] = (pss - server.base_pss) / count
        result["pages"] = reader_pages(server) if kind == "forkchat" else {}
        samples = fan_out(server, clients, rounds)
        result["p50_ms"] = percentile(samples, 50) * 1000
        result["p99_ms"] = percentile(samples, 99) * 1000
        # Then, untimed, the server's system calls for a few more lines
        # (strace slows every call it sees: these lines are not in p99).
        if kind != "python":
            result["calls"] = syscalls_per_line(server, clients, offset=rounds)
        # Then every client sends a line (accents, control characters):
        # what the room costs once everyone has spoken.
        result["all_got"] = everyone_speaks(server, clients, SPOKEN_LINES[1:2])
        result["all_wanted"] = count - 1
        drain(clients, quiet=0.2)
        result["per_client_all_spoke"] = (pss_kib(server.pid) - server.base_pss) / count
        result["all_spoke_pages"] = reader_pages(server) if kind == "forkchat" else {}
        for s in clients:
            s.close()
        result["ok"] = True
    except (OSError, Timeout, RuntimeError) as error:
        result["ok"] = False
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        server.stop()
    return result


STRACE_LINES = 10


def syscalls_per_line(server, clients, offset, lines=STRACE_LINES):
    """{system call: calls per line} of the server's main process (the hub
    for forkchat: its readers and spawner are not traced) while `lines`
    lines are fanned out, from `strace -c`; {} if strace is missing."""
    out = f"/tmp/room_bench_strace.{os.getpid()}"
    try:
        tracer = subprocess.Popen(["strace", "-c", "-o", out, "-p", str(server.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return {}
    try:
        time.sleep(0.5)  # attached
        fan_out(server, clients, lines, offset)
        time.sleep(0.1)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait()
    calls = {}
    try:
        with open(out) as f:
            for line in f:
                fields = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
                    calls[fields[-1]] = int(fields[3]) / lines
        os.unlink(out)
    except OSError:
        pass
    return calls


# ---------------------------------------------------------------------------
# The report


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


def ngircd_version():
    out = subprocess.run([ngircd_server.available(), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


def report(sizes, passes, rounds, results, memory_size, bursts, held, quick=False):
    ms = lambda s: f"{s * 1000:.2f}"  # noqa: E731
    by_kind = {h["kind"]: h for h in held}
    held_count = next((h.get("count", 1000) for h in held), 1000)
    counts = ", ".join(
        f"{rounds[n] * passes[n]} lines with {n} clients"
        + (" (acknowledging, and as many not)" if (n, False) in sizes else "")
        for n in sorted({n for n, _ in sizes}))
    lines = [
        "# forkchat room: benchmarks",
        "",
        f"Written by {'`room_bench.py --quick` (fewer passes and lines than `make bench-room`)' if quick else '`make bench-room` (`Tests/bench/room_bench.py`)'}"
        f" on {datetime.date.today().isoformat()}:",
        f"{machine()}; Python {platform.python_version()}; {ngircd_version()}.",
        "",
        "Three servers, in turn, pass after pass, in the same run: **forkchat room** (release build),",
        "the course's **threaded Python relay** (`Tests/bench/python_relay.py`: one thread per client,",
        "`sendall` to every other client under one lock) and **ngircd**, a production IRC server in C",
        "(one process, a poll loop, a write buffer per client; `Tests/bench/ngircd_server.py`: started in",
        "the foreground with a temporary configuration, every client in one channel). Clients are",
        "sockets of the benchmark process on 127.0.0.1.",
        "",
        "## Fan-out",
        "",
        *textwrap.wrap(
            "One client sends a short line; the time until every other client has read it (the others "
            "are read one after the other, blocking: the last read returns right after the last client "
            f"has the line): {counts}, 2 ms apart, from each client in turn. \"p99 spread\" is the "
            "lowest and highest p99 of single passes. ngircd's clients are IRC operators with user "
            "mode +F (relaxed flood control): otherwise, with 10 clients, each sending 50 lines a "
            "second would be held back a second at a time, and this would measure the penalty, not "
            "the relay.", 96, break_on_hyphens=False),
        "",
        "| clients | measure | " + " | ".join(NAMES[k] for k in KINDS) + " |",
        "|---|---|" + "---|" * len(KINDS),
    ]
    def spread(k, case):
        p99s = [percentile(r["samples"], 99) for r in results[(k, case)]["passes"]]
        return f"{ms(min(p99s))}–{ms(max(p99s))}"

    for case in sizes:
        n, ack = case
        who = f"{n}" if ack else f"{n}, not acknowledging"
        for p, label in ((50, "p50"), (99, "p99")):
            lines.append(f"| {who} | fan-out {label}, ms | "
                         + " | ".join(ms(percentile(results[(k, case)]["samples"], p)) for k in KINDS) + " |")
        lines.append(f"| {who} | p99 spread, ms | " + " | ".join(spread(k, case) for k in KINDS) + " |")
    lines += [
        "",
        "ngircd leaves Nagle's algorithm on (it sets no `TCP_NODELAY`): with a line every 2 ms, each of",
        "its writes to a client would wait for the client's delayed ACK of the one before; the clients",
        "here acknowledge at once between rounds (`TCP_QUICKACK`, untimed), so that this measures the",
        "relay. The rows \"not acknowledging\" leave the clients' kernels to acknowledge as they do for a",
        "person's client (delayed ACKs): the same 999 clients, in the same run, pass for pass after the",
        "acknowledging ones. The machine may be shared with other work: passes differ, and the table",
        "pools them all (medians over every line of every pass).",
        "",
        f"## Memory with {memory_size[0]} clients",
        "",
        "PSS: proportional set size (`/proc/PID/smaps_rollup`) of all the server's processes",
        "(forkchat: hub, spawner and one reader process per client; Python: one process, a thread",
        "per client; ngircd: one process), with the clients in; per client: (PSS with N clients -",
        "PSS with none) / N. Kernel: the growth of the machine's page tables and kernel stacks",
        "(`/proc/meminfo`) with the clients in, per client: what a process or a thread costs the",
        "kernel beyond its PSS (other programs on the machine move it too; sockets are not counted).",
        "Medians of the passes.",
        "",
        "| measure | " + " | ".join(NAMES[k] for k in KINDS) + " |",
        "|---|" + "---|" * len(KINDS),
    ]
    med = lambda k, key: statistics.median(r[key] for r in results[(k, memory_size)]["passes"])  # noqa: E731
    lines.append("| PSS total, MiB | " + " | ".join(f"{med(k, 'pss') / 1024:.1f}" for k in KINDS) + " |")
    lines.append("| PSS per client, KiB | " + " | ".join(f"{med(k, 'per_client'):.1f}" for k in KINDS) + " |")
    lines.append("| PSS per client after the fan-out, KiB | "
                 + " | ".join(f"{med(k, 'per_client_after'):.1f}" for k in KINDS) + " |")
    lines.append("| kernel per client, KiB | " + " | ".join(f"{med(k, 'kernel_per_client'):.1f}" for k in KINDS)
                 + " |")
    lines.append("| PSS per client once every client has spoken, KiB | "
                 + " | ".join(f"{med(k, 'per_client_all_spoke'):.1f}" for k in KINDS) + " |")
    lines.append("| … lines of the others to the client that got fewest | " + " | ".join(
        f"{min(r['all_got'] for r in results[(k, memory_size)]['passes'])} of "
        f"{results[(k, memory_size)]['passes'][0]['all_wanted']}" for k in KINDS) + " |")
    lines.append("| PSS per client with 1000 held, KiB | " + " | ".join(
        f"{by_kind[k]['per_client']:.1f}" if by_kind.get(k, {}).get("ok") else "—" for k in KINDS) + " |")
    lines.append("| … once every one of the 1000 has spoken, KiB | " + " | ".join(
        f"{by_kind[k]['per_client_all_spoke']:.1f} ({by_kind[k]['all_got']} of {by_kind[k]['all_wanted']} lines)"
        if by_kind.get(k, {}).get("ok") else "—" for k in KINDS) + " |")
    lines += [
        "",
        "\"After the fan-out\": the same clients once the fan-out rounds have run, in which "
        f"{rounds[memory_size[0]]} of",
        "them each sent a line and every one received them all. \"Once every client has spoken\": then",
        "every client sends three lines (a plain one; one with accents, an emoji, control characters",
        "and bad UTF-8; one of 5000 bytes, which forkchat cuts at its limit of 4000, cut by the",
        f"client at {IRC_TEXT_BYTES} bytes for ngircd, as IRC lines are at most 512), and every client reads the",
        "others' (the next row counts them). With 1000 held, every client sends the second line.",
        "",
        "### Where a forkchat reader's pages went",
        "",
        *textwrap.wrap(
            "Each reader's private memory (`Private_Dirty` + `Private_Clean` of `/proc/PID/smaps`: the "
            "pages it maps alone, copied when it or its spawner wrote them after the fork), by mapping, "
            f"median over the {memory_size[0]} readers of each pass, then over the passes: idle (joined, "
            "nothing sent), after the fan-out (some have sent a line, all have had one), once every client "
            f"has spoken (the three lines above), idle with {held_count} held, and once each of those has "
            "sent a line. The binary is static: `forkchat rw-p` is its .data and .bss (the C "
            "library's and the Swift runtime's state); `[heap]` starts with the main thread's TLS and "
            "control block (glibc's rseq area among it) and malloc's tcache, then the chunks; "
            "`[stack]` is the stack the reader was forked on. A mapping not listed is shared whole.", 96, break_on_hyphens=False),
        "",
        f"| mapping | idle reader, KiB | after the fan-out, KiB | every client has spoken, KiB "
        f"| idle, {held_count} held, KiB | {held_count} held, all spoken, KiB |",
        "|---|---|---|---|---|---|",
    ]

    def pages(key):
        tables = [r[key]["pages"] for r in results[("forkchat", memory_size)]["passes"] if r[key]]
        names = sorted({k for t in tables for k in t}, key=lambda k: (k == "total", k))
        return {k: statistics.median(t.get(k, 0) for t in tables) for k in names}

    idle, spoke, all_spoke = pages("idle"), pages("spoke"), pages("all_spoke")
    held_pages = by_kind.get("forkchat", {}).get("pages", {}).get("pages", {})
    held_spoke = by_kind.get("forkchat", {}).get("all_spoke_pages", {}).get("pages", {})
    columns = [idle, spoke, all_spoke, held_pages, held_spoke]
    for name in sorted(set().union(*columns), key=lambda k: (k == "total", k)):
        lines.append(f"| {'**total**' if name == 'total' else '`' + name + '`'} | "
                     + " | ".join(f"{column.get(name, 0):g}" for column in columns) + " |")
    lines += [
        "",
        "## A class pastes at once",
        "",
        f"{BURST_SENDERS} clients each send {BURST_LINES} lines of {BURST_BYTES} bytes at the same moment (a class pasting",
        f"a {BURST_LINES * BURST_BYTES // 1000} KB file), while reading what they receive; one more client only reads. Each",
        "server keeps its own flood control (ngircd's clients are plain users here). At most",
        f"{bursts[0]['limit']:.0f} s.",
        "",
        "| measure | " + " | ".join(NAMES[b["kind"]] for b in bursts) + " |",
        "|---|" + "---|" * len(bursts),
    ]

    def cell(b, text):
        return text if b["ok"] else f"failed: {b['error']}"

    lines.append("| lines the reading-only client got | " + " | ".join(
        cell(b, f"{b.get('listener', 0)} of {b.get('listener_of', 0)}") for b in bursts) + " |")
    lines.append("| fewest lines a sender got | " + " | ".join(
        cell(b, f"{b.get('fewest', 0)} of {b.get('fewest_of', 0)}") for b in bursts) + " |")
    lines.append("| clients the server closed | " + " | ".join(cell(b, str(b.get("closed", 0))) for b in bursts)
                 + " |")
    lines.append("| every line to every reader, s | " + " | ".join(
        cell(b, f"{b['seconds']:.2f}" if b.get("seconds") is not None else f"not within {b['limit']:.0f} s")
        for b in bursts) + " |")
    lines += [
        "",
        "ngircd's flood control shapes its result: a user who sends more than 256 bytes, or more than",
        "3 commands, in a second is held back a second (`Throttle_Connection` in its `conn.c`), so each",
        "sender's lines go out at about two a second; nobody is closed, as every client reads. The",
        "relay has no flood control at all; forkchat's allows each client its share of the log at once",
        "(51 KiB with the default 64 MiB and 1000 clients), which a 36 KB paste stays within.",
    ]
    lines += [
        "",
        "## 1000 clients held",
        "",
        "| server | all in | join time, s | processes | PSS total, MiB | fan-out to 999 p50 / p99, ms | 1001st client |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in held:
        if not h.get("ok"):
            lines.append(f"| {NAMES[h['kind']]} | no: {h.get('error', '?')} | | | | | |")
            continue
        lines.append(f"| {NAMES[h['kind']]} | {h['in']} | {h['join_s']:.2f} | {h['processes']} | {h['pss_mib']:.1f} | "
                     f"{h['p50_ms']:.2f} / {h['p99_ms']:.2f} | {h['extra']} |")
    lines += [
        "",
        f"System calls for each line fanned out to the 999 others (`strace -c` of the server's main",
        f"process, {STRACE_LINES} more lines after the timed ones; forkchat: the hub only, its readers",
        "and spawner untraced; the Python relay's 1000 threads are not traced). Counts, which the",
        "machine's load barely moves; what a server does meanwhile on its own (timers, a client it",
        "is still handling) falls in the traced lines too.",
        "",
    ]
    traced = [h for h in held if h.get("calls")]
    if not traced:
        lines.append("(not measured: strace is missing, or could not attach)")
    else:
        lines += ["| system call | " + " | ".join(NAMES[h["kind"]] for h in traced) + " |",
                  "|---|" + "---|" * len(traced)]
    names = sorted({c for h in traced for c in h["calls"]}, key=lambda c: -max(h["calls"].get(c, 0) for h in traced))
    for call in names:
        lines.append(f"| `{call}` | " + " | ".join(f"{h['calls'].get(call, 0):g}" for h in traced) + " |")
    lines.append("| **all** | " + " | ".join(f"{sum(h['calls'].values()):g}" for h in traced) + " |")
    lines += [
        "",
        "Joining: ngircd listens with a backlog of 10 (its `conn.c`), so when clients connect faster than",
        "it accepts them most wait for a SYN to be sent again; forkchat listens with a backlog of",
        "`SOMAXCONN` (4096), the relay of 1024. forkchat's 1002 processes are the hub, the spawner and",
        "1000 readers.",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("forkchat")
    parser.add_argument("--quick", action="store_true", help="fewer passes and rounds")
    parser.add_argument("--only", type=int, nargs="*", help="only these client counts, fan-out only (development)")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "..", "docs", "room-benchmarks.md"))
    args = parser.parse_args()
    if not ngircd_server.available():
        sys.exit("room_bench: ngircd is not installed (apt-get install ngircd)")
    forkchat = os.path.abspath(args.forkchat)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    signal.signal(signal.SIGALRM, on_alarm)

    # (clients, acknowledging at once): the 999 case both ways, in turn.
    sizes = [(10, True), (100, True), (500, True), (999, True), (999, False)]
    memory_size = (500, True)
    passes = {10: 2, 100: 2, 500: 2, 999: 1} if args.quick else {10: 3, 100: 3, 500: 3, 999: 2}
    rounds = ({10: 100, 100: 100, 500: 40, 999: 40} if args.quick
              else {10: 300, 100: 200, 500: 100, 999: 150})
    if args.only:
        sizes = [c for c in sizes if c[0] in args.only]
        memory_size = sizes[0]
    results = {(k, c): {"samples": [], "passes": []} for k in KINDS for c in sizes}
    for p in range(max(passes[n] for n, _ in sizes)):
        for case in sizes:
            n, ack = case
            if p >= passes[n]:
                continue
            for kind in KINDS:
                signal.alarm(600)
                measured = run_pass(kind, forkchat, n, rounds[n], offset=p * rounds[n], acknowledge=ack,
                                    all_speak=case == memory_size and not args.only)
                signal.alarm(0)
                r = results[(kind, case)]
                r["samples"] += measured["samples"]
                r["passes"].append(measured)
                print(f"{kind:8} {n:4} clients{'' if ack else ' (no ack)'} pass {p + 1}: "
                      f"p50 {percentile(measured['samples'], 50) * 1000:.2f} ms, "
                      f"p99 {percentile(measured['samples'], 99) * 1000:.2f} ms, PSS {measured['pss'] / 1024:.1f} MiB "
                      f"({measured['per_client']:.1f} KiB per client, {measured['per_client_after']:.1f} after "
                      f"the lines, kernel {measured['kernel_per_client']:.0f})", flush=True)
                if measured["idle"]:
                    print(f"  reader pages idle {measured['idle']}\n  after a line {measured['spoke']}", flush=True)
                if "all_got" in measured:
                    print(f"  every client spoke: {measured['all_got']} of {measured['all_wanted']} lines to the client "
                          f"that got fewest, {measured['per_client_all_spoke']:.1f} KiB per client"
                          + (f"\n  reader pages {measured['all_spoke']}" if measured["all_spoke"] else ""), flush=True)
    if args.only:
        return
    bursts = []
    for kind in KINDS:
        signal.alarm(300)
        try:
            bursts.append(burst(kind, forkchat, limit=20 if args.quick else 60))
        except Timeout as error:
            bursts.append({"kind": kind, "ok": False, "error": str(error), "limit": 60})
        signal.alarm(0)
        print(bursts[-1], flush=True)
    held = []
    for kind in KINDS:
        signal.alarm(600)
        try:
            held.append(hold(kind, forkchat))
        except Timeout as error:
            held.append({"kind": kind, "ok": False, "error": str(error)})
        signal.alarm(0)
        print(held[-1], flush=True)

    text = report(sizes, passes, rounds, results, memory_size, bursts, held, quick=args.quick)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
