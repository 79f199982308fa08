# Erreur : pas de SO_REUSEADDR : après s'être terminé le premier, le
# serveur ne peut pas être relancé aussitôt (TIME_WAIT).
# Usage : python3 serveur_sans_reuseaddr.py [PORT]
import os
import signal
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
ma_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ma_socket.bind(("", port))
ma_socket.listen(1)
connexion, adresse = ma_socket.accept()
ma_socket.close()
print("connexion de", adresse, flush=True)


def fin_du_fils(signum, frame):
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


signal.signal(signal.SIGCHLD, fin_du_fils)

pid = os.fork()
if pid == 0:
    while True:
        try:
            ligne = input()
        except EOFError:
            break
        connexion.sendall((ligne + "\n").encode())
        if ligne == "exit":
            break
    connexion.shutdown(socket.SHUT_WR)
    os._exit(0)

while True:
    donnees = connexion.recv(4096)
    if not donnees:
        break
    print(donnees.decode(errors="replace"), end="", flush=True)
connexion.close()
try:
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
except (ProcessLookupError, ChildProcessError):
    pass
