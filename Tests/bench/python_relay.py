#!/usr/bin/env python3
"""The course's chat room, as the lab sheets write it: one thread per client.

This is the reference forkchat room is measured against (make bench-room):
the threaded relay a student writes after the sockets and threads sheets.
Each client thread reads what its client sends and, holding one lock, sends
it to every other client with a blocking sendall(). Kept deliberately
plain: no names, no commands, no queue, no limit. A client that stops
reading blocks every sender in sendall() once its socket buffer is full:
the weakness forkchat room's bounded queues are there for.

Usage: python_relay.py [PORT] [--bind ADDRESS]
"""

import socket
import sys
import threading

clients = []
lock = threading.Lock()


def handle(conn, address):
    name = f"{address[0]}:{address[1]}"
    try:
        while True:
            data = conn.recv(1024)
            if not data:
                break
            with lock:
                for other in clients:
                    if other is not conn:
                        try:
                            other.sendall(data)
                        except OSError:
                            pass
    except OSError:
        pass
    finally:
        with lock:
            clients.remove(conn)
        conn.close()
        print(f"{name} left", file=sys.stderr, flush=True)


def main():
    port = 8080
    host = ""
    args = sys.argv[1:]
    if "--bind" in args:
        i = args.index("--bind")
        host = args[i + 1]
        del args[i : i + 2]
    if args:
        port = int(args[0])
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(1024)
    print(f"relay listening on port {port}", file=sys.stderr, flush=True)
    while True:
        conn, address = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with lock:
            clients.append(conn)
        threading.Thread(target=handle, args=(conn, address), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
