# Version threads, serveur : un thread envoie, le programme principal reçoit.
# Usage : python3 serveur_threads.py [PORT]
import socket
import sys
import threading

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
ma_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ma_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ma_socket.bind(("", port))
ma_socket.listen(1)
connexion, adresse = ma_socket.accept()
ma_socket.close()


def envoyer():
    while True:
        try:
            ligne = input()
        except EOFError:
            break
        connexion.sendall((ligne + "\n").encode())
        if ligne == "exit":
            break
    connexion.shutdown(socket.SHUT_WR)


threading.Thread(target=envoyer, daemon=True).start()
while True:
    donnees = connexion.recv(4096)
    if not donnees:
        break
    print(donnees.decode(errors="replace"), end="", flush=True)
connexion.close()
