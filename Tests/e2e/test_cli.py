"""The command line: usage errors (exit 64), help, option placement, and
runtime errors before any chat (exit 1, one clear line)."""

import re
import signal
import time

import pytest

from harness import HAVE_IPV6, Forkchat, free_port, listen_socket, run_forkchat, start_listener

USAGE_ERRORS = [
    # (argv, subcommand whose usage is shown or None, text the Error: line must contain)
    (["listen", "abc"], "listen", "abc"),
    (["listen", "0"], "listen", "'0'"),
    (["listen", "65536"], "listen", "65536"),
    (["listen", "--frobnicate"], "listen", "--frobnicate"),
    (["listen", "-4", "-6"], "listen", "Cannot use -4 and -6 together."),
    (["listen", "--linger", "abc"], "listen", "abc"),
    (["listen", "--linger=-1"], "listen", "-1"),
    (["listen", "--linger"], "listen", "--linger"),
    (["listen", "--retry", "1"], "listen", "--retry"),
    (["connect"], "connect", "Missing expected argument '<host>'."),
    (["connect", "localhost", "abc"], "connect", "abc"),
    (["connect", "localhost", "0"], "connect", "'0'"),
    (["connect", "localhost", "65536"], "connect", "65536"),
    (["connect", "localhost", "--frobnicate"], "connect", "--frobnicate"),
    (["connect", "--keep", "localhost"], "connect", "--keep"),
    (["connect", "localhost", "-6", "-4"], "connect", "Cannot use -4 and -6 together."),
    (["connect", "localhost", "--retry", "abc"], "connect", "abc"),
    (["connect", "localhost", "--retry=soon"], "connect", "soon"),
    (["connect", "localhost", "--linger", "x"], "connect", "x"),
    # --mode, --first, --echo, --trace
    (["listen", "--mode", "bad"], "listen", "Invalid value 'bad' for '--mode'"),
    (["connect", "localhost", "--mode=Fork"], "connect", "'Fork'"),
    (["listen", "--mode"], "listen", "--mode"),
    (["listen", "--first", "send"], "listen", "'--first' needs '--mode alternate'."),
    (["connect", "localhost", "--mode", "poll", "--first", "receive"], "connect", "'--first' needs '--mode alternate'."),
    (["listen", "--mode", "fork", "--first=send"], "listen", "'--first' needs '--mode alternate'."),
    (["listen", "--mode", "alternate", "--first", "later"], "listen", "Invalid value 'later' for '--first'"),
    (["connect", "localhost", "--mode", "alternate", "--first"], "connect", "--first"),
    (["listen", "--echo", "--mode", "threads"], "listen", "Cannot use --echo with --mode."),
    (["listen", "--mode=poll", "--echo"], "listen", "Cannot use --echo with --mode."),
    (["listen", "--echo", "--mode", "alternate"], "listen", "Cannot use --echo with --mode."),
    (["listen", "--echo=yes"], "listen", "--echo"),
    (["connect", "localhost", "--echo"], "connect", "--echo"),
    (["listen", "--trace=yes"], "listen", "--trace"),
    # one rule for numbers: decimal digits only (and a fraction for seconds)
    (["listen", "+80"], "listen", "Invalid port '+80'"),
    (["listen", " 80"], "listen", "Invalid port ' 80'"),
    (["connect", "localhost", "0x50"], "connect", "Invalid port '0x50'"),
    (["connect", "localhost", "--linger", "0x10"], "connect", "Invalid value '0x10' for '--linger'"),
    (["connect", "localhost", "--retry", "1e3"], "connect", "Invalid value '1e3' for '--retry'"),
    (["room", "--max-clients", "+5"], "room", "Invalid value '+5' for '--max-clients'"),
    # the echo server takes none of the chat's options
    (["listen", "--echo", "--quit", "fin"], "listen", "Cannot use --echo with --quit."),
    (["listen", "--echo", "--linger=1"], "listen", "Cannot use --echo with --linger."),
    (["frobnicate"], None, "frobnicate"),
    (["--frobnicate"], None, "--frobnicate"),
]


@pytest.mark.parametrize("argv,subcommand,reason", USAGE_ERRORS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_usage_error(argv, subcommand, reason):
    p = run_forkchat(*argv, timeout=10)
    assert p.popen.returncode == 64, "usage error must exit 64" + p.describe()
    assert p.out_bytes() == b"", "usage errors print nothing on stdout" + p.describe()
    lines = p.err_text().splitlines()
    # Error:, Usage: (continued on indented lines, none over 80 columns), See.
    assert len(lines) >= 3, "expected Error:, Usage: and See lines" + p.describe()
    assert lines[0].startswith("Error: ") and reason in lines[0], f"Error line should mention {reason!r}" + p.describe()
    usage = lines[1:-1]
    assert all(line.startswith(" " * 16) for line in usage[1:]), p.describe()
    assert all(len(line) <= 80 for line in usage), p.describe()
    if subcommand:
        assert lines[1].startswith(f"Usage: forkchat {subcommand} "), p.describe()
        assert lines[-1] == f"  See 'forkchat {subcommand} --help' for more information.", p.describe()
    else:
        assert lines[1].startswith("Usage: forkchat"), p.describe()
        assert re.fullmatch(r"  See 'forkchat( \w+)? --help' for more information\.", lines[-1]), p.describe()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["listen", "--mode", "bad"], "Error: Invalid value 'bad' for '--mode': expected fork, threads, poll or alternate."),
        (["connect", "localhost", "--first", "send"], "Error: '--first' needs '--mode alternate'."),
        (["listen", "--first", "receive"], "Error: '--first' needs '--mode alternate'."),
        (["listen", "--echo", "--mode", "threads"], "Error: Cannot use --echo with --mode."),
        (["connect", "localhost", "--mode", "alternate", "--first", "both"],
         "Error: Invalid value 'both' for '--first': expected send or receive."),
    ],
    ids=" ".join,
)
def test_new_option_errors_exact_message(argv, message):
    p = run_forkchat(*argv, timeout=10)
    assert p.popen.returncode == 64, p.describe()
    assert p.err_text().splitlines()[0] == message, p.describe()


def test_missing_host_exact_message():
    p = run_forkchat("connect", timeout=10)
    assert p.popen.returncode == 64, p.describe()
    assert p.err_text().splitlines()[0] == "Error: Missing expected argument '<host>'.", p.describe()


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["-h"], "listen"),
        (["--help"], "connect"),
        (["help", "listen"], "--keep"),
        (["listen", "--help"], "--allow"),
        (["connect", "-h"], "--retry"),
        (["help", "connect"], "--retry"),
        (["listen", "--help"], "--echo"),
        (["listen", "--help"], "--mode"),
        (["connect", "--help"], "--first"),
        (["connect", "--help"], "--trace"),
    ],
    ids=" ".join,
)
def test_help(argv, needle):
    p = run_forkchat(*argv, timeout=10)
    assert p.popen.returncode == 0, p.describe()
    assert needle in p.out_text(), p.describe()
    assert p.err_text() == "", p.describe()


def test_version():
    p = run_forkchat("--version", timeout=10)
    assert p.popen.returncode == 0, p.describe()
    assert re.fullmatch(r"forkchat \S+\n", p.out_text()), p.describe()


@pytest.mark.parametrize(
    "args",
    [
        ["listen", "{port}", "--bind", "127.0.0.1"],
        ["listen", "--bind", "127.0.0.1", "{port}"],
        ["listen", "--bind=127.0.0.1", "{port}"],
        ["listen", "{port}", "--bind=127.0.0.1", "--keep", "--quit=bye", "--linger=1.5"],
        ["listen", "--first", "send", "--bind", "127.0.0.1", "{port}", "--mode", "alternate"],
        ["listen", "--bind", "127.0.0.1", "--mode=threads", "{port}", "--trace"],
        ["listen", "{port}", "--echo", "--mode", "fork", "--keep", "--bind=127.0.0.1"],
    ],
    ids=" ".join,
)
def test_options_before_or_after_positionals(args):
    port = free_port()
    p = Forkchat(*[a.format(port=port) for a in args], stdin="devnull")
    first = r"(?m)^" if "--trace" in args else r"\A"  # trace lines come before the notice
    p.wait_err(rf"{first}forkchat: listening on 127\.0\.0\.1 port {port}\n")
    p.signal(signal.SIGTERM)
    p.assert_signaled(signal.SIGTERM)


def test_connect_options_after_positionals():
    port = free_port()
    listener = start_listener(port, stdin="devnull")
    client = Forkchat("connect", "127.0.0.1", str(port), "--retry=2", "--linger", "1", "-4", stdin="devnull")
    client.wait_err(rf"forkchat: connected to 127\.0\.0\.1 port {port}\n")
    listener.assert_exit(0)
    client.assert_exit(0)


# ---------------------------------------------------------------------------
# Runtime errors before the chat: exit 1, exactly one line naming host and port


def assert_one_error_line(p, expected_regex):
    assert p.popen.returncode == 1, "runtime error must exit 1" + p.describe()
    assert p.out_bytes() == b"", p.describe()
    lines = p.err_text().splitlines()
    assert len(lines) == 1, "expected exactly one line on stderr" + p.describe()
    assert re.fullmatch(expected_regex, lines[0]), f"stderr should match {expected_regex!r}" + p.describe()


def test_connection_refused():
    port = free_port()
    p = run_forkchat("connect", "127.0.0.1", str(port), timeout=10)
    assert_one_error_line(p, rf"forkchat: connect to 127\.0\.0\.1 port {port}: Connection refused")


@pytest.mark.parametrize(
    "args,shown",
    [([], "::"), (["-4"], "0.0.0.0"), (["--bind", "127.0.0.1"], "127.0.0.1"), (["-6"], "::")],
    ids=["default", "-4", "bind", "-6"],
)
def test_port_in_use(args, shown):
    if not HAVE_IPV6 and shown == "::":
        pytest.skip("no IPv6")
    port = free_port()
    # A dual-stack listener on :: holds the port for every address of both families.
    busy = listen_socket(port, "::" if HAVE_IPV6 else "0.0.0.0")
    p = run_forkchat("listen", str(port), *args, timeout=10)
    busy.close()
    assert_one_error_line(p, rf"forkchat: bind to {re.escape(shown)} port {port}: Address already in use")


@pytest.mark.parametrize("port_args,port", [([], 8080), (["4242"], 4242)], ids=["default-port", "port"])
def test_unknown_host(port_args, port):
    start = time.monotonic()
    p = run_forkchat("connect", "nosuch.invalid", *port_args, timeout=20)
    assert_one_error_line(p, rf"forkchat: getaddrinfo for nosuch\.invalid port {port}: \S.*")
    assert time.monotonic() - start < 15


def test_retry_times_out():
    port = free_port()
    start = time.monotonic()
    p = run_forkchat("connect", "127.0.0.1", str(port), "--retry", "0.5", "--trace", timeout=10)
    elapsed = time.monotonic() - start
    assert p.popen.returncode == 1, p.describe()
    err = "".join(l for l in p.err_text().splitlines(keepends=True) if not l.startswith("trace "))
    lines = err.splitlines()
    assert lines[0] == f"forkchat: connect to 127.0.0.1 port {port}: Connection refused; retrying for 0.5 s", p.describe()
    assert err.count("retrying") == 1, "the retry notice is printed once" + p.describe()
    assert lines[-1] == f"forkchat: connect to 127.0.0.1 port {port}: Connection refused", p.describe()
    assert len(lines) == 2, p.describe()
    # Not before 0.5 s (load only makes it later); and it gave up after
    # 0.5 s, not more: its attempts, 100 ms of sleep apart, number at most
    # 0.5 / 0.1 plus the first (plus one for rounding). Load only lowers
    # the count; a longer retry raises it.
    assert elapsed >= 0.5, f"--retry 0.5 gave up after {elapsed:.2f} s" + p.describe()
    attempts = [e for e in p.trace() if e.event == "connect"]
    assert 2 <= len(attempts) <= 7, f"{len(attempts)} attempts in --retry 0.5" + p.describe()


def test_unknown_allowed_host_names_the_host_only():
    # --allow is about a host: no port in the message (it used to say "port 0").
    p = run_forkchat("listen", str(free_port()), "--allow", "nosuch.invalid", timeout=20)
    assert_one_error_line(p, r"forkchat: getaddrinfo for nosuch\.invalid: \S.*")
