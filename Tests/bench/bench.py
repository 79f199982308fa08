#!/usr/bin/env python3
"""make bench: forkchat, nc (netcat-openbsd) and socat side by side, in one run.

Every measurement alternates the tools round by round (A, B, C, A, B, C ...)
so that whatever the machine does meanwhile hits all of them alike. The
report gives medians and the ratio to nc, and is written to
docs/benchmarks.md with a bar chart, docs/benchmarks.svg.

Usage: bench.py FORKCHAT_BINARY [--quick] [--out DIR]

--quick (make bench-chat BENCH_FLAGS=--quick): small sizes, two rounds, a
smoke test of the bench itself, written to .build/bench-quick/. perf (for
the scheduler's steps of a line) is used if it works here; a C compiler
(cc, clang, gcc) builds the splice relay.
"""

import argparse
import datetime
import fcntl
import json
import os
import platform
import pty
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty

GiB = 1 << 30
WATCHDOG = float(os.environ.get("BENCH_WATCHDOG", 120))
# The relay moves 1 GiB in a few seconds; a round it has not finished in
# 20 s is stuck (see failed_note), not slow.
RELAY_WATCHDOG = 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
MiB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tools(forkchat):
    """How each tool listens on 127.0.0.1 and connects to it, sending FIN at
    the end of its input and exiting when the peer has closed too."""
    return {
        "forkchat": (
            lambda p: [forkchat, "listen", "--bind", "127.0.0.1", str(p)],
            lambda p: [forkchat, "connect", "127.0.0.1", str(p)],
        ),
        "nc": (
            lambda p: ["nc", "-N", "-l", "127.0.0.1", str(p)],
            lambda p: ["nc", "-N", "127.0.0.1", str(p)],
        ),
        # -t 60: socat's default 0.5 s after the first EOF would cut the
        # other direction off.
        "socat": (
            lambda p: ["socat", "-t", "60", f"TCP-LISTEN:{p},bind=127.0.0.1,reuseaddr", "STDIO"],
            lambda p: ["socat", "-t", "60", "STDIO", f"TCP:127.0.0.1:{p}"],
        ),
    }


# The ceiling column: splice(2) on both ends, no user-space copy
# (Tests/bench/splice_relay.c, compiled by `ceiling_tool`); bulk only.
SPLICE_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splice_relay.c")


def ceiling_tool(workdir):
    """Compiles the splice relay into `workdir` with $CC, cc or clang (the
    Swift toolchain has one); returns its (listen, connect) commands, or
    None and why if no compiler could build it."""
    binary = os.path.join(workdir, "splice_relay")
    errors = []
    for cc in [os.environ.get("CC"), "cc", "clang", "gcc"]:
        if cc and shutil.which(cc):
            built = subprocess.run([cc, "-O2", "-o", binary, SPLICE_C], capture_output=True, text=True)
            if built.returncode == 0:
                return (lambda p: [binary, "listen", str(p)], lambda p: [binary, "connect", str(p)]), cc
            errors.append(f"{cc}: {built.stderr.strip()[:200]}")
    return None, "; ".join(errors) or "no C compiler (cc, clang, gcc)"


def wait_listening(port, timeout=5.0):
    """Waits until something listens on 127.0.0.1:port, without connecting
    (a probe connection would be taken as the chat): /proc/net/tcp, state 0A."""
    want = f":{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1].endswith(want) and fields[3] == "0A":
                    return
        time.sleep(0.002)
    raise RuntimeError(f"nothing listens on port {port}")


def process_tree(pid):
    pids = [pid]
    for p in pids:
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                pids += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return pids


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Side:
    """One end's standard streams, driven by the harness: a thread writes
    `send` bytes into its stdin (a pipe), and keeps it open until this end
    has read all it should receive, then closes it (end of input). Another
    thread counts what comes out of its stdout (a pipe) to the end.

    Holding stdin open until everything has arrived gives every tool the
    same job: no end sends its FIN early, so nc's listener, which exits on
    the peer's FIN, cannot cut the other direction off, and a tool that
    loses bytes is caught by the count instead of looking fast."""

    block = bytes(MiB)

    def __init__(self, send, receive):
        self.send, self.receive = send, receive
        self.stdin_read, self.stdin_write = os.pipe()
        self.stdout_read, self.stdout_write = os.pipe()
        # 1 MiB pipes instead of 64 KiB: 16 times fewer wake-ups in the
        # harness, so that it is the tools, not the harness, that is timed.
        for fd in (self.stdin_write, self.stdout_write):
            fcntl.fcntl(fd, F_SETPIPE_SZ, MiB)
        self.received = 0
        self.complete = threading.Event()
        if receive == 0:
            self.complete.set()

    def start(self):
        os.close(self.stdin_read)
        os.close(self.stdout_write)
        self.threads = [threading.Thread(target=self.feed), threading.Thread(target=self.count)]
        for t in self.threads:
            t.start()

    def feed(self):
        left = self.send
        view = memoryview(self.block)
        try:
            while left:
                left -= os.write(self.stdin_write, view[: min(left, MiB)])
            self.complete.wait(120)
        except OSError:
            pass
        os.close(self.stdin_write)

    def count(self):
        # splice(2) moves the bytes on to /dev/null without copying them
        # through Python: the harness costs every tool as little as it can.
        sink = os.open(os.devnull, os.O_WRONLY)
        while True:
            moved = os.splice(self.stdout_read, sink, MiB)
            if not moved:
                break
            self.received += moved
            if self.received >= self.receive:
                self.complete.set()
        self.complete.set()
        os.close(self.stdout_read)
        os.close(sink)

    def join(self):
        for t in self.threads:
            t.join(130)


def wait_timed(process):
    """Waits for a process as Popen.wait does (waitpid(2), no timeout) and
    returns its CPU time in seconds, user and system, its children's that
    it reaped included (wait4(2)'s rusage: forkchat's forked side too)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def bulk(tool, up, down, memory, watchdog_seconds=None, cpu=None):
    """One session: `up` bytes client → server and `down` bytes server →
    client at once. Returns seconds from the client's start to both ends'
    exit, or raises if a byte is missing; records peak VmHWM."""
    listen, connect = tool
    port = free_port()
    server_side, client_side = Side(down, up), Side(up, down)
    server = subprocess.Popen(listen(port), stdin=server_side.stdin_read,
                              stdout=server_side.stdout_write, stderr=subprocess.DEVNULL)
    server_side.start()
    wait_listening(port)
    start = time.perf_counter()
    client = subprocess.Popen(connect(port), stdin=client_side.stdin_read,
                              stdout=client_side.stdout_write, stderr=subprocess.DEVNULL)
    client_side.start()
    peaks = {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            for top in (server.pid, client.pid):
                for pid in process_tree(top):
                    peaks[pid] = max(peaks.get(pid, 0), vm_hwm_kib(pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    # wait() without a timeout blocks in waitpid(2); with one, Python polls
    # with sleeps of up to 50 ms, which would round every time measured.
    watchdog = threading.Timer(watchdog_seconds or WATCHDOG, lambda: [p.kill() for p in (client, server)])
    watchdog.start()
    try:
        seconds = wait_timed(client) + wait_timed(server)
        codes = (client.returncode, server.returncode)
        elapsed = time.perf_counter() - start
    finally:
        watchdog.cancel()
        done.set()
        sampler.join()
        for p in (client, server):
            if p.poll() is None:
                p.kill()
                p.wait()
        server_side.join()
        client_side.join()
    name = os.path.basename(listen(port)[0])
    if codes != (0, 0):
        raise RuntimeError(f"{name} exited {codes}")
    if (server_side.received, client_side.received) != (up, down):
        raise RuntimeError(f"{name} delivered {server_side.received} and {client_side.received} bytes, "
                           f"not {up} and {down}")
    memory.append(max(peaks.values()) if peaks else 0)
    if cpu is not None:
        cpu.append(seconds)
    return elapsed


PLUMBINGS = ("pipe → pipe", "file → file", "pipe → /dev/null", "pipe → terminal", "text pipe → terminal")

# "text pipe": printable lines (79 letters and "\n") instead of zeros, so
# that forkchat's terminal sanitizer writes exactly the bytes it receives,
# each line with its "< " mark: the like-for-like row against the relay.
TEXT_LINE = b"abcdefghijklmnopqrstuvwxyz" * 3 + b"a\n"


def plumbing_bulk(tool, plumbing, size, workdir, watchdog_seconds=None, cpu=None):
    """`size` bytes client → server through the plumbing a user has: the
    client's stdin a pipe from `head -c` or a file, the server's stdout a
    pipe (counted), a file (its size checked), /dev/null or a terminal (a
    pty in raw mode, its master drained). The server's stdin is /dev/null:
    it half-closes at once and receives to the end. Returns seconds from the
    client's start to both ends' exit."""
    listen, connect = tool
    port = free_port()
    source_kind, sink_kind = (part.strip() for part in plumbing.split("→"))
    text = source_kind == "text pipe"
    if text:
        source_kind = "pipe"
    opened, threads, counted = [], [], [0]
    if sink_kind == "pipe":
        read_end, sink = os.pipe()
        opened.append(sink)

        def drain():
            null = os.open(os.devnull, os.O_WRONLY)
            while True:
                moved = os.splice(read_end, null, MiB)
                if not moved:
                    break
                counted[0] += moved
            os.close(null)
            os.close(read_end)
        threads.append(threading.Thread(target=drain))
    elif sink_kind == "file":
        sink = os.open(os.path.join(workdir, "received"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        opened.append(sink)
    elif sink_kind == "/dev/null":
        sink = os.open(os.devnull, os.O_WRONLY)
        opened.append(sink)
    else:
        master, sink = pty.openpty()
        tty.setraw(sink)
        opened.append(sink)

        def drain_pty():
            while True:
                try:
                    data = os.read(master, MiB)
                except OSError:  # EIO: every slave descriptor is closed
                    break
                if not data:
                    break
                counted[0] += len(data)
            os.close(master)
        threads.append(threading.Thread(target=drain_pty))
    null_in = os.open(os.devnull, os.O_RDONLY)
    server = subprocess.Popen(listen(port), stdin=null_in, stdout=sink, stderr=subprocess.DEVNULL)
    for fd in opened:
        os.close(fd)
    for t in threads:
        t.start()
    wait_listening(port)
    start = time.perf_counter()
    if source_kind == "file":
        source = open(os.path.join(workdir, "source"), "rb")
        client = subprocess.Popen(connect(port), stdin=source, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        feeder = None
    else:
        payload = os.path.join(workdir, "text") if text else "/dev/zero"
        feeder = subprocess.Popen(["head", "-c", str(size), payload], stdout=subprocess.PIPE)
        client = subprocess.Popen(connect(port), stdin=feeder.stdout, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        feeder.stdout.close()
        source = None
    watchdog = threading.Timer(watchdog_seconds or WATCHDOG, lambda: [p.kill() for p in (client, server)])
    watchdog.start()
    try:
        seconds = wait_timed(client) + wait_timed(server)
        codes = (client.returncode, server.returncode)
        elapsed = time.perf_counter() - start
    finally:
        watchdog.cancel()
        os.close(null_in)
        if source:
            source.close()
        if feeder:
            feeder.wait()
        for t in threads:
            t.join(30)
    name = os.path.basename(listen(port)[0])
    if codes != (0, 0):
        raise RuntimeError(f"{name} exited {codes} ({plumbing})")
    if sink_kind == "file":
        counted[0] = os.path.getsize(os.path.join(workdir, "received"))
    if sink_kind in ("pipe", "file") and counted[0] != size:
        raise RuntimeError(f"{name} delivered {counted[0]} of {size} bytes ({plumbing})")
    if cpu is not None:
        cpu.append(seconds)
    return elapsed


def read_line(fd, buffer):
    while b"\n" not in buffer:
        ready, _, _ = select.select([fd], [], [], 10)
        if not ready:
            raise RuntimeError("line did not arrive within 10 s")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise RuntimeError("end of file while waiting for a line")
        buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    return line, rest


def latency(tool, count, client_prefix=(), started=None):
    """Line latency both ways: a line written to one side's stdin until it
    is read from the other's stdout. Returns (client→server, server→client)
    lists of seconds. `started`, if given, is called once the warm-up lines
    have gone, with the server's and the client's process trees (pids)."""
    listen, connect = tool
    port = free_port()
    pipe = subprocess.PIPE
    server = subprocess.Popen(listen(port), stdin=pipe, stdout=pipe, stderr=subprocess.DEVNULL)
    wait_listening(port)
    client = subprocess.Popen([*client_prefix, *connect(port)], stdin=pipe, stdout=pipe,
                              stderr=subprocess.DEVNULL)
    results = ([], [])
    buffers = {server.stdout.fileno(): b"", client.stdout.fileno(): b""}
    try:
        for i in range(count + 10):
            for direction, (writer, reader) in enumerate(((client, server), (server, client))):
                line = b"line %d %s" % (i, b"x" * 40)
                fd = reader.stdout.fileno()
                start = time.perf_counter()
                os.write(writer.stdin.fileno(), line + b"\n")
                got, buffers[fd] = read_line(fd, buffers[fd])
                elapsed = time.perf_counter() - start
                if got != line:
                    raise RuntimeError(f"sent {line!r}, received {got!r}")
                if i >= 10:  # the first lines warm up caches and pages
                    results[direction].append(elapsed)
            if i == 9 and started:
                started(process_tree(server.pid), process_tree(client.pid))
            time.sleep(0.001)
    finally:
        for p in (client, server):
            p.stdin.close()
        for p in (client, server):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.stdout.close()
    return results


TERMINAL_TOOLS = ("--plain", "screen", "nc")


def terminal_latency(forkchat, how, count):
    """The terminal path: forkchat connects with stdin and stdout on a
    pseudo-terminal (80x24, TERM=xterm), as a person runs it; a line sent by
    the peer's socket until its text has been written to the terminal (read
    from the pty's master side), with the chat screen, with --plain, or nc
    in forkchat's place (`how`). Returns a list of seconds."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, bytes([24, 0, 80, 0, 0, 0, 0, 0]))

    def controlling_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = dict(os.environ, TERM="xterm", NO_COLOR="1")
    if how == "nc":
        command = ["nc", "-N", "127.0.0.1", str(port)]
    else:
        command = [forkchat, "connect", "127.0.0.1", str(port)] + ([] if how == "screen" else ["--plain"])
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
                               preexec_fn=controlling_terminal, env=env)
    os.close(slave)
    connection, _ = server.accept()
    server.close()
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    shown = bytearray()

    def wait_for(text):
        while text not in shown:
            ready, _, _ = select.select([master], [], [], 10)
            if not ready:
                raise RuntimeError(f"{text!r} never reached the terminal")
            shown.extend(os.read(master, 65536))
        del shown[: shown.index(text) + len(text)]

    results = []
    try:
        time.sleep(0.2)  # the chat screen is drawn, the child started
        for i in range(count + 10):
            line = b"line %d %s" % (i, b"x" * 40)
            start = time.perf_counter()
            connection.sendall(line + b"\n")
            wait_for(line)
            if i >= 10:
                results.append(time.perf_counter() - start)
            time.sleep(0.001)
    finally:
        connection.close()  # the peer leaves: a chat at a terminal ends at once
        if how == "nc":
            process.terminate()  # nc waits for its terminal's end of input
        try:
            while os.read(master, 65536):
                pass
        except OSError:  # EIO: the terminal has no process left
            pass
        process.wait(timeout=10)
        os.close(master)
    return results


def syscalls_per_line(tool, count):
    """System calls the connecting side makes per line it sends or
    receives, one line at a time: `strace -f -c` over a chat of `count`
    lines each way, minus one of none (start-up and exit cancel out)."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        totals = []
        for lines in (0, count):
            latency(tool, lines, ("strace", "-f", "-c", "-o", out.name))
            with open(out.name) as f:
                # "100.00    0.000581           2       227        18 total"
                total = re.search(r"^\s*\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$", f.read(), re.M)
            totals.append(int(total.group(1)))
    return (totals[1] - totals[0]) / (2 * count)


def strace_counts(path):
    """{system call: calls} from an `strace -c` summary."""
    counts = {}
    with open(path) as f:
        for line in f:
            # "% time  seconds  usecs/call  calls  [errors]  syscall"
            m = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] = int(m.group(1))
    return counts


# The calls of the copy, not of start-up and exit (which `strace -c` also
# counts, a few dozen: the same for any size).
COPY_CALLS = ("read", "write", "splice", "sendfile", "poll", "ppoll", "select", "pselect6", "recvfrom", "sendto")


def plumbing_syscalls(tool, plumbing, size, workdir):
    """System calls per MiB on each side while `size` bytes go through a
    plumbing (`plumbing_bulk`, each side under `strace -f -c`): the sending
    and the receiving side's counts of the calls that copy, per MiB."""
    listen, connect = tool
    workdir = os.path.join(workdir, "calls")  # its own files, of its own size
    if not os.path.exists(workdir):
        os.mkdir(workdir)
        with open(os.path.join(workdir, "source"), "wb") as f:
            f.truncate(size)
        with open(os.path.join(workdir, "text"), "wb") as f:
            block = TEXT_LINE * (MiB // len(TEXT_LINE) + 1)
            for _ in range(size // MiB):
                f.write(block[:MiB])
    logs = {side: os.path.join(workdir, f"{side}.strace") for side in ("send", "receive")}
    traced = (lambda p: ["strace", "-f", "-c", "-o", logs["receive"], *listen(p)],
              lambda p: ["strace", "-f", "-c", "-o", logs["send"], *connect(p)])
    plumbing_bulk(traced, plumbing, size, workdir)
    out = {}
    for side, log in logs.items():
        counts = strace_counts(log)
        out[side] = {c: counts[c] / (size / MiB) for c in COPY_CALLS if counts.get(c)}
    return out


def perf_works():
    """Whether `perf sched record` can trace the scheduler here (root, or a
    low perf_event_paranoid, and the sched tracepoints)."""
    if not shutil.which("perf"):
        return False
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["perf", "sched", "record", "-o", os.path.join(d, "p"), "--", "true"],
                           capture_output=True)
        return r.returncode == 0


def wakeup_steps(tool, count, workdir):
    """Where a line waits: the scheduler traced (`perf sched record -a`)
    while `count` lines go each way, then, for each process of the tool,
    `perf sched timehist`'s rows: how often it ran, how long it waited from
    its wake-up to running (sch delay) and how long it ran. Returns
    ({pid: role}, {pid: [(delay µs, run µs)]}, (c→s, s→c) latencies)."""
    data = os.path.join(workdir, "perf.data")
    recorder = subprocess.Popen(["perf", "sched", "record", "-a", "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # perf takes a while to set up, more on a loaded machine: its file
    # exists once it is, and the chat starts some time after that.
    deadline = time.monotonic() + 10
    while not os.path.exists(data) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    trees = {}
    latencies = latency(tool, count, started=lambda server, client: trees.update(server=server, client=client))
    recorder.send_signal(2)
    recorder.wait()
    roles = {}
    for side in ("server", "client"):
        pids = trees.get(side, [])
        for i, pid in enumerate(pids):
            roles[pid] = side if len(pids) == 1 else f"{side} {'parent (receives)' if i == 0 else 'child (sends)'}"
    text = subprocess.run(["perf", "sched", "timehist", "-i", data], capture_output=True, text=True).stdout
    runs = {pid: [] for pid in roles}
    for line in text.splitlines():
        # "  25584.142749 [0000]  forkchat[20872]   50.142   0.047   0.053"
        m = re.match(r"\s*[\d.]+\s+\[\d+\]\s+\S+\[(\d+)(?:/\d+)?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", line)
        if m and int(m.group(1)) in runs:
            runs[int(m.group(1))].append((float(m.group(3)) * 1000, float(m.group(4)) * 1000))
    os.unlink(data)
    return roles, runs, latencies


class Sink:
    """A listening socket that reads each connection to its end, then closes."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                while connection.recv(65536):
                    pass


def drop_page_cache():
    """Empties the page cache (root only): every executable and library is
    then read from the disk again, by the kernel's readahead, as after a
    reboot. Says which it was, for the report."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return "dropped"
    except OSError:
        return "as found"


def read_through(tool):
    """Reads a tool's executable and the libraries it loads (ldd) with
    read(2), start to end, as an installer writes them: the page cache then
    holds them in large pieces."""
    program = shutil.which(tool[1](0)[0])
    listed = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    for path in [program] + re.findall(r"(/\S+) \(0x", listed):
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def connect_send_exit(tool, sink):
    _, connect = tool
    start = time.perf_counter()
    client = subprocess.Popen(connect(sink.port), stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client.stdin.write(b"hello\n")
    client.stdin.close()
    code = client.wait()  # (no timeout: see bulk)
    elapsed = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{connect(sink.port)[0]} exited {code}")
    return elapsed


def cpu_ticks():
    """(steal, all) clock ticks of every CPU so far (/proc/stat's first
    line): steal is the time the host ran something else while this
    virtual machine had work for its CPU."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def stolen_share(before, after):
    """The share of the CPU time the host took from this machine between
    two `cpu_ticks`, in percent."""
    total = after[1] - before[1]
    return 100 * (after[0] - before[0]) / total if total else 0.0


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("forkchat")
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds (a smoke test)")
    parser.add_argument("--out", help="where benchmarks.md and .svg go (docs/; with --quick, .build/bench-quick/)")
    parser.add_argument("--report", metavar="JSON", help="write the report from a run's benchmarks.json, measure nothing")
    args = parser.parse_args()
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    if args.out is None:  # a smoke test never overwrites the report in docs/
        args.out = os.path.join(top, ".build", "bench-quick") if args.quick else os.path.join(top, "docs")
    if args.report:
        return report_from(args.report, args)
    for needed in ("nc", "socat", "strace"):
        if not shutil.which(needed):
            sys.exit(f"bench: {needed} is missing (apt-get install netcat-openbsd socat strace)")
    forkchat = os.path.abspath(args.forkchat)
    all_tools = tools(forkchat)
    names = list(all_tools)
    size = 64 * MiB if args.quick else GiB
    rounds = 2 if args.quick else 5
    latency_rounds, lines = (2, 30) if args.quick else (10, 300)
    connects = 20 if args.quick else 300
    started = time.time()
    # Every run starts from the same page cache (as root): the programs'
    # pages brought in by their own execs, small pieces, whatever the run
    # before left (its last rows read the files through).
    drop_page_cache()
    stolen_before = cpu_ticks()

    rows = {}  # metric -> tool -> a value per round
    ceiling = {}  # bulk metric -> splice relay's MB/s per round
    relay_failed = {}  # bulk metric -> why each failed relay round failed
    memory = {n: [] for n in names}

    def record(metric, name, value):
        rows.setdefault(metric, {}).setdefault(name, []).append(value)

    cpu = {}  # bulk metric -> tool -> CPU ms per GiB of both ends, per round

    def cpu_time(metric, name, used, moved):
        cpu.setdefault(metric, {}).setdefault(name, []).append(used[0] * 1e3 * GiB / moved)

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as workdir:
        relay, compiler = ceiling_tool(workdir)
        if relay is None:
            print(f"  splice relay: not built ({compiler}): no ceiling column", flush=True)
        scenarios = [
            ("bulk client → server", size, 0),
            ("bulk server → client", 0, size),
            ("bulk full duplex (both ways summed)", size // 2, size // 2),
        ]
        for title, up, down in scenarios:
            for r in range(rounds):
                for name in names:
                    used = []
                    seconds = bulk(all_tools[name], up, down, memory[name], cpu=used)
                    record(f"{title}, MB/s", name, (up + down) / seconds / 1e6)
                    cpu_time(f"{title}, MB/s", name, used, up + down)
                    print(f"  {title} round {r + 1} {name}: {(up + down) / seconds / 1e6:.0f} MB/s", flush=True)
                if relay:
                    try:
                        used = []
                        seconds = bulk(relay, up, down, [], RELAY_WATCHDOG, cpu=used)
                        ceiling.setdefault(f"{title}, MB/s", []).append((up + down) / seconds / 1e6)
                        cpu_time(f"{title}, MB/s", "splice relay", used, up + down)
                    except RuntimeError as error:
                        relay_failed.setdefault(f"{title}, MB/s", []).append(str(error))
                        print(f"  {title} round {r + 1} splice relay: {error}", flush=True)

        # One direction, client → server, through each plumbing a user has,
        # the splice relay beside the tools in the same rounds.
        plumbing_size = size // 4
        with open(os.path.join(workdir, "source"), "wb") as f:
            f.truncate(plumbing_size)  # a sparse file: zeros from the page cache
        with open(os.path.join(workdir, "text"), "wb") as f:
            text_block = TEXT_LINE * (MiB // len(TEXT_LINE) + 1)
            for _ in range(plumbing_size // MiB):
                f.write(text_block[:MiB])
        for plumbing in PLUMBINGS:
            metric = f"bulk {plumbing}, {plumbing_size // MiB} MiB, MB/s"
            for r in range(rounds):
                for name in names:
                    used = []
                    seconds = plumbing_bulk(all_tools[name], plumbing, plumbing_size, workdir, cpu=used)
                    record(metric, name, plumbing_size / seconds / 1e6)
                    cpu_time(metric, name, used, plumbing_size)
                if relay:
                    try:
                        used = []
                        seconds = plumbing_bulk(relay, plumbing, plumbing_size, workdir, RELAY_WATCHDOG, cpu=used)
                        ceiling.setdefault(metric, []).append(plumbing_size / seconds / 1e6)
                        cpu_time(metric, "splice relay", used, plumbing_size)
                    except RuntimeError as error:
                        relay_failed.setdefault(metric, []).append(str(error))
                        print(f"  {plumbing} round {r + 1} splice relay: {error}", flush=True)
                print(f"  {plumbing} round {r + 1}: "
                      + ", ".join(f"{n} {rows[metric][n][-1]:.0f}" for n in names)
                      + (f", splice {ceiling[metric][-1]:.0f}" if ceiling.get(metric) else "") + " MB/s",
                      flush=True)

        # Per step, bulk: the calls each side makes per MiB, a count.
        calls = {}
        step_tools = {"forkchat": all_tools["forkchat"], "nc": all_tools["nc"]}
        if relay:
            step_tools["splice relay"] = relay
        for plumbing in PLUMBINGS:
            for name, tool in step_tools.items():
                calls[(plumbing, name)] = plumbing_syscalls(tool, plumbing, min(plumbing_size, 64 * MiB), workdir)
        print("  system calls per MiB counted", flush=True)

        # Line latency, both directions in the same rounds.
        samples = {d: {n: [] for n in names} for d in ("client → server", "server → client")}
        for r in range(latency_rounds):
            for name in names:
                there, back = latency(all_tools[name], lines)
                for direction, values in zip(samples, (there, back)):
                    samples[direction][name] += values
                    record(f"line latency {direction} p50, µs", name, statistics.median(values) * 1e6)
                    record(f"line latency {direction} p99, µs", name, percentile(values, 99) * 1e6)
                print(f"  latency round {r + 1} {name}: {statistics.median(there) * 1e6:.0f} / "
                      f"{statistics.median(back) * 1e6:.0f} µs", flush=True)
        pooled = {}  # metric -> tool -> the value over every round's lines
        for direction, by in samples.items():
            for name, values in by.items():
                pooled.setdefault(f"line latency {direction} p50, µs", {})[name] = statistics.median(values) * 1e6
                pooled.setdefault(f"line latency {direction} p99, µs", {})[name] = percentile(values, 99) * 1e6

        # Per step, latency: where a line waits, from the scheduler's trace.
        steps = None
        if perf_works():
            steps = {name: wakeup_steps(all_tools[name], max(lines, 300), workdir) for name in ("forkchat", "nc")}
            print("  scheduler traced", flush=True)

    # Thirty short rounds rather than three long ones: where the scheduler
    # puts the processes on this 2-core machine moves a round's median by
    # tens of µs, so more alternations give each the same luck, and 4500
    # samples each put 45 in the p99 tail instead of 15.
    terminal = {n: [] for n in TERMINAL_TOOLS}
    terminal_rounds, terminal_lines = (3, 15) if args.quick else (30, 150)
    for r in range(terminal_rounds):
        for name in terminal:
            values = terminal_latency(forkchat, name, terminal_lines)
            terminal[name] += values
            print(f"  terminal round {r + 1} {name}: {statistics.median(values) * 1e6:.0f} µs", flush=True)

    for name in names:
        rows.setdefault("system calls per line (strace -c, client)", {})[name] = [
            syscalls_per_line(all_tools[name], 200)
        ]

    # How the page cache holds an executable moves its start (docs/package.md):
    # pages that came in by the faults of an exec sit in small pieces, a
    # file read through with read(2) (by cp, install, dpkg or tar) in large
    # ones, which a fault maps many pages of at once. As root, the cache is
    # emptied and every tool is measured both ways, each time after one
    # round not counted: its pages brought in by exec alone, as after a
    # reboot, then its executable and libraries read through first, as an
    # installer leaves them. Otherwise, once, as found.
    sink = Sink()
    run_page_cache = drop_page_cache()
    states = [("connect, send a line, exit, ms", False)]
    if run_page_cache == "dropped":
        states.append(("connect, send a line, exit, files read first, ms", True))
    for metric, read_first in states:
        if read_first:
            drop_page_cache()
            for name in names:
                read_through(all_tools[name])
        for name in names:
            connect_send_exit(all_tools[name], sink)
        for r in range(connects):
            for name in names:
                record(metric, name, connect_send_exit(all_tools[name], sink) * 1e3)
    for name in names:
        rows.setdefault("peak resident memory per process, MB", {})[name] = [
            max(memory[name]) / 1024 if memory[name] else 0
        ]

    table = {metric: {n: statistics.median(v) for n, v in by.items()} for metric, by in rows.items()}
    table.update(pooled)
    run = dict(size=size, rounds=rounds, latency_rounds=latency_rounds, lines=lines, connects=connects,
               minutes=(time.time() - started) / 60, compiler=compiler,
               terminal_rounds=terminal_rounds, terminal_lines=terminal_lines,
               load=open("/proc/loadavg").read().split()[:3], date=datetime.date.today().isoformat(),
               stolen=stolen_share(stolen_before, cpu_ticks()), page_cache=run_page_cache)
    saved = dict(table=table, rows=rows, names=names, run=run, terminal=terminal, ceiling=ceiling,
                 calls=[[list(k), v] for k, v in calls.items()],
                 steps={n: [{str(p): r for p, r in roles.items()}, {str(p): r for p, r in runs.items()}, list(lat)]
                        for n, (roles, runs, lat) in steps.items()} if steps else None,
                 relay_failed=relay_failed, quick=args.quick, cpu=cpu)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "benchmarks.json"), "w") as f:
        json.dump(saved, f)
    write_report(args, table, rows, names, run, terminal, ceiling, calls, steps, relay_failed, cpu)


def report_from(path, args):
    """Writes the report again from a run's saved results (benchmarks.json,
    beside the report), without measuring: for a change of its wording."""
    with open(path) as f:
        saved = json.load(f)
    calls = {tuple(k): v for k, v in saved["calls"]}
    steps = None
    if saved["steps"]:
        steps = {n: ({int(p): r for p, r in roles.items()}, {int(p): [tuple(x) for x in r] for p, r in runs.items()},
                     tuple(lat)) for n, (roles, runs, lat) in saved["steps"].items()}
    args.quick = saved["quick"]
    write_report(args, saved["table"], saved["rows"], saved["names"], saved["run"], saved["terminal"],
                 saved["ceiling"], calls, steps, saved["relay_failed"], saved.get("cpu", {}))


HIGHER_IS_BETTER = ("MB/s",)


def spread(values):
    """± half the range of the rounds' values, as a percentage of their
    median ("" for a single value)."""
    if len(values) < 2 or not statistics.median(values):
        return ""
    return f" ±{(max(values) - min(values)) / 2 / statistics.median(values) * 100:.0f}%"


def terminal_table(terminal):
    """--plain, the chat screen and nc on the terminal, p50 and p99."""
    out = ["| terminal path (pty), µs | --plain | screen | nc | --plain / nc | screen / nc |",
           "|---|---|---|---|---|---|"]
    for label, p in (("p50", 50), ("p99", 99)):
        plain, screen, nc = (percentile(terminal[n], p) * 1e6 for n in TERMINAL_TOOLS)
        out.append(f"| peer's line on the terminal, {label} | {plain:.1f} | {screen:.1f} | {nc:.1f} | "
                   f"{plain / nc:.2f}× | {screen / nc:.2f}× |")
    return "\n".join(out)


def below_ceiling(table, limits):
    """The bulk rows where forkchat is below 0.95 of the relay, compared as
    the report prints the ratio (two decimals): 0.947 reads 0.95 and is not
    listed as below it."""
    return [m for m, limit in limits.items() if round(table[m]["forkchat"] / limit, 2) < 0.95]


def rounds_gap(rows, ceiling, metric):
    """Whether forkchat's rounds and the relay's overlap on one row, said
    from the rounds themselves."""
    mine, theirs = rows[metric]["forkchat"], ceiling[metric]
    if max(mine) >= min(theirs):
        return (f"forkchat's best round ({max(mine):.0f}) is above the relay's worst ({min(theirs):.0f}): "
                "the gap is within the rounds' spread")
    return (f"forkchat's best round ({max(mine):.0f}) stays below the relay's worst ({min(theirs):.0f}): "
            "the gap is outside the rounds' spread")


def ceiling_note(table, limits):
    """What the ceiling column says in this run, from its numbers."""
    if not limits:
        return "The splice relay was not built or did not complete a round: no ceiling column in this run."
    below = below_ceiling(table, limits)
    above = [m for m, limit in limits.items() if round(table[m]["forkchat"] / limit, 2) > 1.05]
    text = ("forkchat is below 0.95 of the splice relay on: " + "; ".join(
        f"{m.split(',')[0]} ({table[m]['forkchat'] / limits[m]:.2f}×)" for m in below)
        + ". Why, for each: below." if below else
        "forkchat is at 0.95 of the splice relay or above on every bulk row.")
    if above:
        text += (" It is more than 5% above the relay on " + "; ".join(m.split(",")[0] for m in above)
                 + ": there the relay is a reference, not a strict ceiling: both move those bytes "
                 "with splice(2) or sendfile(2), without a copy through the process (the table of "
                 "calls below), so what is left between them is how the calls are sized and "
                 "scheduled, which this run does not separate.")
    return text


def failed_note(relay_failed, rounds):
    """The relay's rounds that did not complete, and what that means."""
    if not relay_failed:
        return "The splice relay completed every round."
    items = "; ".join(f"{m.split(',')[0]}: {len(v)} of {rounds} ({v[0]})" for m, v in relay_failed.items())
    return ("The splice relay did not complete every round (its column is the median of the rounds it "
            f"completed): {items}. A stuck round is killed after {RELAY_WATCHDOG} s. Seen while this "
            "report was written (2026-12-07, Linux 6.18): with bytes going both ways at once, "
            "the relay, in C as in Python, now and then stops with every pipe and socket empty and "
            "fewer bytes counted out than went in; forkchat, which splices only while a read fills "
            "its buffer, delivered every byte in every round (the harness counts them).")


def calls_table(calls, plumbings, tools_named):
    """System calls per MiB, each side, per plumbing and tool."""
    out = ["| plumbing | tool | sending side, calls per MiB | receiving side, calls per MiB |", "|---|---|---|---|"]

    def cell(counts):
        return ", ".join(f"{c} {n:.1f}" for c, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= 0.05) or "—"

    for plumbing in plumbings:
        for name in tools_named:
            if (plumbing, name) in calls:
                c = calls[(plumbing, name)]
                out.append(f"| {plumbing} | {name} | {cell(c['send'])} | {cell(c['receive'])} |")
    return "\n".join(out)


def steps_table(steps):
    """Each process's share of a line: runs, wake-up delay, time on a CPU."""
    out = ["| tool | process | runs per line it carries | wake-up to running, p50 µs | on a CPU per run, p50 µs |",
           "|---|---|---|---|---|"]
    for name, (roles, runs, (there, back)) in steps.items():
        for pid, role in roles.items():
            # forkchat's processes carry one direction each, nc's both; the
            # 10 warm-up lines each way ran too.
            lines = len(there) + 10 if ("sends" in role or "receives" in role) else len(there) + len(back) + 20
            r = runs.get(pid) or [(0.0, 0.0)]
            out.append(f"| {name} | {role} | {len(runs.get(pid, [])) / lines:.2f} | "
                       f"{statistics.median(x[0] for x in r):.1f} | {statistics.median(x[1] for x in r):.1f} |")
    return "\n".join(out)


def step_value(steps, tool, role_part, index):
    roles, runs, _ = steps[tool]
    values = [x[index] for pid, role in roles.items() if role_part in role for x in runs.get(pid, [])]
    return statistics.median(values) if values else float("nan")


def cpu_table(cpu_times, names):
    """The CPU time of both ends per GiB moved (user and system, median of
    the rounds), each tool and the relay, per bulk row."""
    tools_named = [n for n in [*names, "splice relay"] if any(n in by for by in cpu_times.values())]
    out = ["| bulk | " + " | ".join(tools_named) + " | forkchat / splice |",
           "|---|" + "---|" * (len(tools_named) + 1)]
    for metric, by in cpu_times.items():
        median = {n: statistics.median(v) for n, v in by.items()}
        ratio = (f"{median['forkchat'] / median['splice relay']:.2f}×"
                 if "forkchat" in median and median.get("splice relay") else "—")
        cells = " | ".join(f"{median[n]:.0f}{spread(by[n])}" if n in median else "—" for n in tools_named)
        out.append(f"| {metric.split(',')[0].removeprefix('bulk ')} | {cells} | {ratio} |")
    return "\n".join(out)


def cpu_said(cpu_times, metric):
    """forkchat's CPU time against the relay's on one row, in words."""
    by = cpu_times.get(metric, {})
    if "forkchat" not in by or "splice relay" not in by:
        return ""
    mine, theirs = statistics.median(by["forkchat"]), statistics.median(by["splice relay"])
    return f"; CPU time {mine:.0f} against the relay's {theirs:.0f} ms per GiB ({mine / theirs:.2f}×)"


def write_report(args, table, rows, names, run, terminal, ceiling, calls, steps, relay_failed, cpu_times):
    limits = {metric: statistics.median(v) for metric, v in ceiling.items()}
    header = ("| measure | " + " | ".join(names)
              + " | forkchat / nc | splice relay | forkchat / splice | nc / splice |")
    out = [header, "|---|" + "---|" * (len(names) + 4)]
    for metric, values in table.items():
        ratio = values["forkchat"] / values["nc"] if values["nc"] else float("nan")
        cells = " | ".join(f"{values[n]:.1f}{spread(rows.get(metric, {}).get(n, []))}" for n in names)
        limit = limits.get(metric)
        extra = (f"{limit:.1f}{spread(ceiling[metric])} | {values['forkchat'] / limit:.2f}× | "
                 f"{values['nc'] / limit:.2f}×") if limit else "— | — | —"
        out.append(f"| {metric} | {cells} | {ratio:.2f}× | {extra} |")
    text = "\n".join(out)
    print()
    print(text)
    terminal_text = terminal_table(terminal)
    print()
    print(terminal_text)
    calls_text = calls_table(calls, PLUMBINGS, ("forkchat", "nc", "splice relay"))
    print()
    print(calls_text)
    cpu_text = cpu_table(cpu_times, names) if cpu_times else "Not measured in this run."
    print()
    print(cpu_text)
    steps_text = steps_table(steps) if steps else ""
    if steps:
        print()
        print(steps_text)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    nc_version = subprocess.run(["nc", "-h"], capture_output=True, text=True).stderr.splitlines()[0]
    socat_version = subprocess.run(["socat", "-V"], capture_output=True, text=True).stdout.splitlines()[1]
    load = run["load"]
    # A virtual machine's CPUs are the host's to give: time it took for
    # something else (steal) spreads every round, of every tool.
    stolen_text = (f", CPU time taken by the host (steal) {run['stolen']:.1f}%"
                   if "stolen" in run else "")
    size, rounds, lines = run["size"], run["rounds"], run["lines"]
    plumbing_mib = size // 4 // MiB
    latency_lines = run["latency_rounds"] * lines
    if steps:
        f_recv = step_value(steps, "forkchat", "receives", 1)
        f_send = step_value(steps, "forkchat", "sends", 1)
        n_run = step_value(steps, "nc", "", 1)
        f_delay = statistics.median(
            [step_value(steps, "forkchat", "receives", 0), step_value(steps, "forkchat", "sends", 0)])
        n_delay = step_value(steps, "nc", "", 0)
        back_delay = step_value(steps, "forkchat", "server child", 0)
        there_delay = step_value(steps, "forkchat", "client child", 0)
        traced_lines = len(steps["forkchat"][2][0])
        # The harness writes the line back as soon as the line there has
        # come out: the server's parent, which has just written it, may
        # still be on a CPU when the server's child is woken for the line
        # back; nc's one process has both jobs.
        back = (f" The line back is written as soon as the line there has come out: forkchat's server "
                f"child, woken for it while the server's parent may still be running, waits "
                f"{back_delay:.1f} µs to run, the client's child {there_delay:.1f} µs (the line there "
                "comes after 1 ms of quiet); nc's one process per end has both jobs."
                if back_delay > there_delay else "")
        longer = ("forkchat's sending child runs longer than its receiving parent: on loopback, the "
                  "write(2) to the socket runs TCP's whole path, the receiving socket's included, and "
                  "wakes the receiver from there." if f_send > f_recv else
                  "In this run forkchat's receiving parent ran as long as its sending child or longer.")
        steps_prose = f"""Each line wakes two processes on its way, for forkchat as for nc: the
sending side's (forkchat: the child, blocked in read(2) on stdin; nc: the
one process, in poll(2)) and the receiving side's (forkchat: the parent,
in poll(2) on the socket and its signal pipe; nc: the other end's one
process). What `perf sched timehist` says about each, over {traced_lines} lines
each way (a run of its own, after the rounds above): forkchat's sending
child is on a CPU {f_send:.1f} µs per run, its receiving parent {f_recv:.1f} µs, nc's
processes {n_run:.1f} µs (each of nc's runs does either job, often both); from
wake-up to running they wait {f_delay:.1f} µs (forkchat, median of both) and
{n_delay:.1f} µs (nc). {longer} The rest of a line's time (the latency rows
minus these steps) is the harness's: its write(2) into the sending side's
stdin, its own wake-up and read(2) at the other end, and the scheduler
putting four busy processes (two for nc) on two cores.{back}"""
    else:
        steps_prose = ("`perf sched record` could not trace the scheduler on this machine (not root, or no "
                       "sched tracepoints): the per-process steps were not measured in this run.")
    bulk_rows = [m for m in limits]
    below = below_ceiling(table, limits)
    why = []
    spliced = []
    for m in below:
        if "terminal" in m:
            why.append(f"- {m.split(',')[0]}: the bytes for a terminal must be read into the process "
                       "and go through the peer text sanitizer (control characters shown, never obeyed; "
                       "\"< \" marks), so forkchat reads and writes them, where the relay splices what "
                       "it receives into the terminal unchanged. "
                       + ("Zeros cost most: each NUL is shown as the two bytes \"^@\", so forkchat "
                          "writes twice the bytes it receives, through the terminal's line discipline."
                          if "text" not in m else "Printable lines: the sanitizer's own work per byte, "
                          "and the \"< \" of each line."))
        else:
            spliced.append(m)
    if spliced:
        # One reason for every spliced row: say it once, the counts from the
        # pipe → pipe row (the harness's own pipes are pipes too).
        mine, theirs = calls.get(("pipe → pipe", "forkchat")), calls.get(("pipe → pipe", "splice relay"))
        counted = ""
        if mine and theirs:
            counted = (f" (pipe → pipe, receiving side: {sum(mine['receive'].values()):.1f} calls per MiB, "
                       f"{mine['receive'].get('poll', 0):.1f} of them poll(2), against the relay's "
                       f"{sum(theirs['receive'].values()):.1f}; the sending side "
                       f"{sum(mine['send'].values()):.1f} against {sum(theirs['send'].values()):.1f})")
        rows_said = "; ".join(f"{m.split(',')[0]} ({table[m]['forkchat'] / limits[m]:.2f}×: "
                              f"{rounds_gap(rows, ceiling, m)}{cpu_said(cpu_times, m)})" for m in spliced)
        why.insert(0, f"- {rows_said}. Between pipes (the harness's stdin and stdout are pipes) "
                   "forkchat moves the bytes with the same splice(2) as the relay, no copy either, "
                   f"and its receiving side stays in splice(2) while the bytes flow{counted}. "
                   "It starts with read(2) and write(2) until a read fills its 64 KiB buffer, and "
                   "its sending side goes back to them when a splice moves less than half of one. "
                   "The CPU time of both ends (table above) is what the processes themselves cost; "
                   "where forkchat's is not above the relay's, the rest of the gap is where the "
                   "scheduler put four busy processes and the harness's threads on two cores, "
                   "which moves from round to round.")
    page_cache_text = ("after the page cache was emptied (drop_caches): first with each program's\n"
                       "  pages brought back by its exec alone (as after a reboot), then with its\n"
                       "  executable and libraries read through first (as an installer leaves\n"
                       "  them: \"files read first\"); one round not counted each time"
                       if run.get("page_cache") == "dropped" else "with the page cache as it was found")
    memory_cache_text = (", the page cache\n  emptied at the start of the run (so pages brought in by execs)"
                         if run.get("page_cache") == "dropped" else "")
    why_text = "\n".join(why) if why else "Nothing to explain in this run: no bulk row is below 0.95."
    failed_text = failed_note(relay_failed, run["rounds"])
    report = f"""# Benchmarks

Written by `make bench` (`Tests/bench/bench.py`) on {run["date"]}, in {run["minutes"]:.0f} minutes:
{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, load average at the end {" ".join(load)}{stolen_text};
{nc_version}, {socat_version.strip()}; the splice relay compiled with {run["compiler"]}.
{"**Quick run (--quick): small sizes, few rounds; not for comparison.**" if args.quick else ""}

Each measure runs forkchat, nc and socat in turn, round after round, in the
same run, and the splice relay (the ceiling) in the same rounds; the table
gives medians, ± half the range of the rounds as a percentage of the
median, and the ratios of forkchat to nc and of forkchat and nc to the
ceiling (higher is better for MB/s, lower for µs, ms and MB).

- bulk: {size // MiB} MiB client → server, then server → client, then {size // 2 // MiB} MiB
  each way at once; stdin and stdout are pipes to the harness, which writes
  1 MiB blocks, counts every byte that comes out, and closes an end's stdin
  only once that end has received everything (so no tool's teardown can cut
  a transfer short, and a lost byte fails the run); timed from the client's
  start to both ends' exit; {rounds} rounds. Commands:
  `forkchat listen --bind 127.0.0.1 P` / `forkchat connect 127.0.0.1 P`,
  `nc -N -l 127.0.0.1 P` / `nc -N 127.0.0.1 P`,
  `socat -t 60 TCP-LISTEN:P,bind=127.0.0.1,reuseaddr STDIO` / `socat -t 60 STDIO TCP:127.0.0.1:P`.
- bulk through a plumbing: {plumbing_mib} MiB client → server only, the client's
  stdin a pipe from `head -c` or a (sparse) file, the server's stdin
  /dev/null (it half-closes at once) and its stdout a pipe (counted), a file
  (its size checked), /dev/null or a pseudo-terminal in raw mode; {rounds} rounds.
  The bytes are zeros, except "text pipe": lines of 79 letters. On a
  terminal forkchat shows each NUL as "^@" (more bytes written than
  received), where nc, socat and the relay pass it on.
- splice relay: `Tests/bench/splice_relay.c`, forkchat's shape (fork, one
  process per direction) moving the bytes with splice(2) only, through a
  1 MiB pipe of its own where neither end is a pipe, no copy through user
  space, into a terminal too (Linux takes splice(2) into a tty since 5.10);
  read(2) and write(2) where the kernel refuses (EINVAL). In C: the ceiling
  must not pay an interpreter's start.
- line latency: a 50-byte line written to one side's stdin until it is read
  from the other's stdout (pipes), both directions in turn in each round,
  {run["latency_rounds"]} rounds of {lines} lines (p50 and p99 over all {latency_lines}; the ± from
  the rounds' own p50 and p99).
- system calls per line: `strace -f -c` on the connecting side while 200
  lines go each way one at a time, minus a run with none, divided by the
  400 lines it sent or received (a count, not a time: the same on any machine).
- connect, send a line, exit: whole-process time of the client against a
  listening sink that reads to the end and closes; {run["connects"]} runs per tool,
  {page_cache_text}.
- peak resident memory: the largest VmHWM (/proc/PID/status) of any one
  process of the tool (forkchat has two per side), sampled during the bulk runs{memory_cache_text}.

The machine was shared with other work when this file was last written
unless the load average above is near 0: read the ratios, not the values.

{text}

{ceiling_note(table, limits)}

{failed_text}

![forkchat / nc ratios](benchmarks.svg)

## Where the time went

### Bulk: the calls per MiB

Counts, not times (the same on a loaded machine): each side of one
{min(plumbing_mib, 64)} MiB transfer through each plumbing under `strace -f -c`,
the calls that move bytes or wait for them, per MiB. forkchat moves bulk
data as the relay does: splice(2) between a pipe and the socket,
sendfile(2) from a regular file to the socket, and, from the socket to a
file or /dev/null, splice(2) through a pipe of its own; a terminal gets
read(2) and write(2), through the sanitizer. nc reads and writes 16 KiB
blocks, each after a poll(2). A side's first calls are read(2) and
write(2) until a read fills forkchat's 64 KiB buffer (lines stay cheap).
The sending side goes back to them when a splice moves less than half a
buffer; the receiving side (fork mode) stays in splice(2), without a
poll(2) before each one, until the socket has been idle for 100 ms
(SO_RCVTIMEO; docs/design.md says how a signal is still seen).

{calls_text}

### Bulk: the CPU time per GiB

User and system time of both ends of each bulk run (wait4(2), forkchat's
forked processes included), per GiB moved, median of the rounds and ±
their spread: what the tool's processes cost on a CPU, apart from the time
they wait to be run. Less sensitive to the scheduler than MB/s, not immune
to it: a busy machine raises it too (caches, wake-ups). forkchat / splice
below 1.00 is less CPU than the relay. The harness's threads are not
counted.

{cpu_text}

Where forkchat is below the ceiling, why:

{why_text}

### A line: where it waits

{steps_prose}

{steps_text}

## The terminal path: the chat screen, --plain and nc

What a person at a terminal waits for: a line sent by the peer's socket
until its text has been written to the terminal (a pseudo-terminal,
80x24, read on its master side), forkchat connecting with `--plain` (the
kernel's line discipline, "< " marks) and with the chat screen (the line
drawn in the conversation: one write(2) that saves the cursor, goes to the
conversation's last line, scrolls the screen one row, writes the row and
restores the cursor, every signal blocked around it), and `nc -N` in its place, which writes the bytes as they come; {run["terminal_lines"]}
lines each in {run["terminal_rounds"]} alternating rounds.

{terminal_text}

The package's size and what the static binary costs at start (page faults,
start to exit against nc): [package.md](package.md).
"""
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "benchmarks.md"), "w") as f:
        f.write(report)
    with open(os.path.join(args.out, "benchmarks.svg"), "w") as f:
        f.write(svg_chart(table, names))
    print(f"\nwrote {os.path.join(args.out, 'benchmarks.md')} and benchmarks.svg")


def svg_chart(table, names):
    """A bar chart of each tool's value relative to nc (nc = 1), one group
    of bars per measure; drawn by hand, no packages."""
    colours = {"forkchat": "#2a7ab0", "nc": "#999999", "socat": "#e0a030"}
    metrics = list(table)
    bar, gap, left, top, width = 14, 16, 330, 40, 360
    height = top + len(metrics) * (len(names) * bar + gap) + 40
    ratios = {m: {n: (table[m][n] / table[m]["nc"] if table[m]["nc"] else 0) for n in names} for m in metrics}
    scale_max = max(2.5, max(max(r.values()) for r in ratios.values()))
    x = lambda v: left + v / scale_max * width
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="20" font-size="14" font-weight="bold">Relative to nc (nc = 1; '
        'MB/s: longer is better; latency, time, memory: shorter is better)</text>',
    ]
    y = top
    for m in metrics:
        parts.append(f'<text x="{left - 8}" y="{y + bar * len(names) / 2 + 4}" text-anchor="end">{m}</text>')
        for n in names:
            v = ratios[m][n]
            parts.append(f'<rect x="{left}" y="{y}" width="{max(1, x(v) - left):.1f}" height="{bar - 2}" '
                         f'fill="{colours[n]}"/>')
            parts.append(f'<text x="{x(v) + 4:.1f}" y="{y + bar - 4}">{n} {v:.2f}</text>')
            y += bar
        y += gap
    parts.append(f'<line x1="{x(1):.1f}" y1="{top - 6}" x2="{x(1):.1f}" y2="{y}" stroke="black" '
                 'stroke-dasharray="3,3"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    main()
