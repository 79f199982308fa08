# Version threads, client : un thread envoie, le programme principal reçoit.
# Usage : python3 client_threads.py [PORT]
import socket
import sys
import threading

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
ma_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ma_socket.connect(("localhost", port))


def envoyer():
    while True:
        try:
            ligne = input()
        except EOFError:
            break
        ma_socket.sendall((ligne + "\n").encode())
        if ligne == "exit":
            break
    ma_socket.shutdown(socket.SHUT_WR)


# daemon : le thread qui lit le clavier ne retient pas la fin du programme.
threading.Thread(target=envoyer, daemon=True).start()
while True:
    donnees = ma_socket.recv(4096)
    if not donnees:
        break
    print(donnees.decode(errors="replace"), end="", flush=True)
ma_socket.close()
