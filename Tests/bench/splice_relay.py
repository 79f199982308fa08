#!/usr/bin/env python3
"""The ceiling of a relay between standard streams and a TCP socket.

A two-party chat with forkchat's shape, one process per direction after
fork(), that moves the bytes with splice(2) only: the kernel moves pages
between the pipe or file, a pipe and the socket, and no byte is copied
through user space. No relay that reads into a buffer and writes it out can
be faster on the same plumbing; make bench gives forkchat's speed as a
fraction of this one's (Tests/bench/bench.py).

splice(2) needs a pipe on one side: where neither descriptor is a pipe (a
file into the socket, the socket into a file or /dev/null), the bytes go
through a pipe of our own, still without a copy. A terminal cannot take
splice(2) (EINVAL): there the relay falls back to read(2) and write(2) of 64
KiB, which is then the ceiling of that plumbing too.

Usage: splice_relay.py listen PORT | splice_relay.py connect PORT
(127.0.0.1 only; sends FIN at the end of its input, exits at the peer's).
"""

import fcntl
import os
import socket
import stat
import sys

# As much as one call may move: a pipe holds what its capacity says (64 KiB
# by default, 1 MiB where the harness or we set it), and splice(2) moves up
# to that; asking for less would only mean more calls.
CHUNK = 1 << 20
FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_MORE
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def is_pipe(fd):
    return stat.S_ISFIFO(os.fstat(fd).st_mode)


def copy(source, target):
    while True:
        data = os.read(source, CHUNK)
        if not data:
            return
        view = memoryview(data)
        while view:
            view = view[os.write(target, view):]


def move(source, target):
    """Moves everything from `source` to `target` until end of input."""
    if is_pipe(source) or is_pipe(target):
        ends = None
    else:
        ends = os.pipe()
        try:
            fcntl.fcntl(ends[1], F_SETPIPE_SZ, CHUNK)
        except OSError:
            pass  # over /proc/sys/fs/pipe-max-size: the default will do
    try:
        while True:
            if ends is None:
                moved = os.splice(source, target, CHUNK, flags=FLAGS)
                if not moved:
                    return
                continue
            moved = os.splice(source, ends[1], CHUNK, flags=FLAGS)
            if not moved:
                return
            while moved:
                moved -= os.splice(ends[0], target, moved, flags=FLAGS)
    except OSError as error:
        if error.errno != 22:  # EINVAL: a terminal; anything else is real
            raise
        copy(source, target)


def main():
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "listen":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        connection, _ = listener.accept()
        listener.close()
    else:
        connection = socket.create_connection(("127.0.0.1", port))
    fd = connection.fileno()
    pid = os.fork()
    if pid == 0:
        # The child: standard input to the socket, then FIN.
        code = 0
        try:
            move(0, fd)
            connection.shutdown(socket.SHUT_WR)
        except OSError as error:
            print(f"splice_relay: send: {error.strerror.lower()}", file=sys.stderr)
            code = 1
        os._exit(code)
    # The parent: the socket to standard output, then wait for the child.
    code = 0
    try:
        move(fd, 1)
    except OSError as error:
        print(f"splice_relay: receive: {error.strerror.lower()}", file=sys.stderr)
        code = 1
    _, status = os.waitpid(pid, 0)
    sys.exit(code or os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
