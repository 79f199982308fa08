# Q4 : le client avec fork. Après la connexion, deux processus :
# - le fils lit l'entrée standard et l'écrit dans la socket ;
# - le père lit la socket et l'écrit sur la sortie standard.
# Squelette : complétez les parties marquées « À COMPLÉTER ».
# Usage : python3 q4_client_fork.py [hôte [port]]    (localhost 8080)
import os
import signal
import socket
import sys

HOTE = sys.argv[1] if len(sys.argv) > 1 else "localhost"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((HOTE, PORT))
print("Connecté à", HOTE, "port", PORT, flush=True)

fils_attendu = False


def fin_du_fils(signum, frame):
    """SIGCHLD : le fils a fini."""
    global fils_attendu
    # À COMPLÉTER (4) : attendre le fils sans bloquer
    # (os.waitpid(-1, os.WNOHANG)) et noter qu'il est attendu.


signal.signal(signal.SIGCHLD, fin_du_fils)
sys.stdout.flush()  # pourquoi ? (question 4.2)
pid = os.fork()

if pid == 0:
    # Le fils : clavier -> socket.
    # À COMPLÉTER (1) : lire les lignes de l'entrée standard
    # (sys.stdin.buffer.readline(), b"" à Ctrl-D) et les envoyer (sendall) ;
    # s'arrêter aussi après avoir envoyé la ligne "exit".
    # À COMPLÉTER (2) : dire au serveur que l'on n'enverra plus rien
    # (pas close() : pourquoi ? question 4.4).
    os._exit(0)

# Le père : socket -> écran.
# À COMPLÉTER (3) : tant que recv(4096) ne renvoie pas b"", écrire les
# octets reçus sur la sortie standard (sys.stdout.buffer.write, flush()).

signal.signal(signal.SIGCHLD, signal.SIG_DFL)
if not fils_attendu:
    # À COMPLÉTER (5) : le fils attend peut-être encore le clavier :
    # le terminer (os.kill), puis attendre sa terminaison (os.waitpid).
    pass
client.close()
