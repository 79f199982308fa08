# Question 4, client : un processus par sens (version correcte).
# Le fils copie le clavier vers la socket, le père la socket vers l'écran.
# Usage : python3 client_fork.py [PORT]
import os
import signal
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
ma_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ma_socket.connect(("localhost", port))


def fin_du_fils(signum, frame):
    # SIGCHLD : le fils s'est terminé, le père l'attend (pas de zombie).
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


signal.signal(signal.SIGCHLD, fin_du_fils)

pid = os.fork()
if pid == 0:
    # Le fils : le clavier vers la socket.
    while True:
        try:
            ligne = input()
        except EOFError:
            break
        ma_socket.sendall((ligne + "\n").encode())
        if ligne == "exit":
            break
    # shutdown et non close : le père tient encore la socket, seul
    # shutdown fait partir le FIN.
    ma_socket.shutdown(socket.SHUT_WR)
    os._exit(0)

# Le père : la socket vers l'écran, jusqu'à ce que le serveur ferme.
while True:
    donnees = ma_socket.recv(4096)
    if not donnees:
        break
    print(donnees.decode(errors="replace"), end="", flush=True)
ma_socket.close()
try:
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
except (ProcessLookupError, ChildProcessError):
    pass
