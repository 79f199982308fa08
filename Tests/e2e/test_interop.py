"""Interop with nc (netcat-openbsd) and socat, forkchat in both roles, data
both ways, in fork mode (the default) and in threads and poll mode; and the
turn-taking alternate mode against each tool. A missing tool skips loudly, or
fails when CI=true."""


import pytest

from harness import CONTRACT_MODES, Forkchat, Proc, free_port, mode_args, require_tool, start_listener

FC_DATA = b"from forkchat\x00\xff binary\r\n" + bytes(range(256)) + b"\nend of forkchat\n"
TOOL_DATA = b"from the tool\n\x01\x02\xfe\nend of tool\n"


def tool_command(tool, role, port):
    """The tool's command line; role is the TOOL's role."""
    if tool == "nc":
        path = require_tool("nc")
        return [path, "-N", "127.0.0.1", str(port)] if role == "connect" else [path, "-l", "127.0.0.1", str(port)]
    path = require_tool("socat")
    if role == "connect":
        return [path, "-", f"TCP:127.0.0.1:{port}"]
    return [path, f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "-"]


@pytest.mark.parametrize("tool_role", ["connect", "listen"], ids=["forkchat-listens", "forkchat-connects"])
@pytest.mark.parametrize("tool", ["nc", "socat"])
@pytest.mark.parametrize("mode", CONTRACT_MODES)
def test_interop(mode, tool, tool_role):
    port = free_port()
    argv = tool_command(tool, tool_role, port)
    if tool_role == "connect":
        fc = start_listener(port, "--bind", "127.0.0.1", *mode_args(mode), stdin="pipe",
                            expect=rf"forkchat: listening on 127\.0\.0\.1 port {port}\n")
        other = Proc(argv, stdin="pipe", name=tool)
        fc.wait_err(r"forkchat: connection from 127\.0\.0\.1 port \d+\n")
    else:
        other = Proc(argv, stdin="pipe", name=tool)
        # The tool prints nothing when it is ready: --retry covers its start.
        fc = Forkchat("connect", "127.0.0.1", str(port), "--retry", "10", *mode_args(mode), stdin="pipe")
        fc.wait_err(rf"forkchat: connected to 127\.0\.0\.1 port {port}\n")

    fc.send(FC_DATA)
    other.send(TOOL_DATA)
    other.wait_out_bytes(FC_DATA)
    fc.wait_out_bytes(TOOL_DATA)
    fc.send(b"second from forkchat\n")
    other.wait_out_bytes(FC_DATA + b"second from forkchat\n")
    other.send(b"second from the tool\n")
    fc.wait_out_bytes(TOOL_DATA + b"second from the tool\n")

    other.close_stdin()
    fc.close_stdin()
    fc.assert_exit(0)
    other.assert_exit(0)
    assert fc.out_bytes() == TOOL_DATA + b"second from the tool\n", fc.describe()
    assert other.out_bytes() == FC_DATA + b"second from forkchat\n", other.describe()


@pytest.mark.parametrize("tool", ["nc", "socat"])
def test_alternate_mode_with_tool(tool):
    """A full-duplex tool against the turn-taking mode: forkchat listens and
    waits for the tool's line, answers with its own, and so on."""
    port = free_port()
    fc = start_listener(port, "--bind", "127.0.0.1", "--mode", "alternate", stdin="pipe",
                        expect=rf"forkchat: listening on 127\.0\.0\.1 port {port}\n")
    other = Proc(tool_command(tool, "connect", port), stdin="pipe", name=tool)
    fc.wait_err(r"forkchat: connection from 127\.0\.0\.1 port \d+\n")
    fc.send(b"answer 1\nanswer 2\n")
    # The positive sign: forkchat sleeps in its receive turn with its
    # answers still unread in its stdin; the tool, asleep too, printed
    # nothing.
    fc.wait_asleep()
    other.wait_settled()
    assert other.out_bytes() == b"", "forkchat waits for the tool's line first" + other.describe()
    other.send(b"question 1\n")
    fc.wait_out_bytes(b"question 1\n")
    other.wait_out_bytes(b"answer 1\n")
    other.send(b"question 2\n")
    other.wait_out_bytes(b"answer 1\nanswer 2\n")
    other.close_stdin()  # the tool's FIN while forkchat waits for its next line
    fc.close_stdin()  # a pipe's input is sent until it ends, then forkchat's FIN
    fc.assert_exit(0)
    other.assert_exit(0)
    assert fc.out_bytes() == b"question 1\nquestion 2\n", fc.describe()
    assert other.out_bytes() == b"answer 1\nanswer 2\n", other.describe()
