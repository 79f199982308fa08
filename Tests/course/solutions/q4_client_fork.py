# Q4 : le client avec fork. Après la connexion, deux processus :
# - le fils lit l'entrée standard et l'écrit dans la socket ;
# - le père lit la socket et l'écrit sur la sortie standard.
# Chacun s'occupe d'un sens : une ligne reçue s'affiche dès qu'elle arrive.
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
    """SIGCHLD : le fils a fini ; l'attendre tout de suite (pas de zombie)."""
    global fils_attendu
    if os.waitpid(-1, os.WNOHANG)[0] != 0:
        fils_attendu = True


signal.signal(signal.SIGCHLD, fin_du_fils)
sys.stdout.flush()  # sinon le fils hérite du tampon et l'écrit une 2e fois
pid = os.fork()

if pid == 0:
    # Le fils : clavier -> socket.
    while True:
        ligne = sys.stdin.buffer.readline()  # b"" : Ctrl-D
        if not ligne:
            break
        client.sendall(ligne)
        if ligne.strip() == b"exit":
            break
    # Demi-fermeture : FIN part, même si le père garde la socket ouverte
    # (close() ne l'enverrait pas : le père détient encore le descripteur).
    client.shutdown(socket.SHUT_WR)
    os._exit(0)

# Le père : socket -> écran.
while True:
    donnees = client.recv(4096)
    if not donnees:  # b"" : le serveur a fini d'envoyer
        break
    sys.stdout.buffer.write(donnees)
    sys.stdout.buffer.flush()

signal.signal(signal.SIGCHLD, signal.SIG_DFL)
if not fils_attendu:
    os.kill(pid, signal.SIGTERM)  # le fils attend encore le clavier
    os.waitpid(pid, 0)  # attendre sa terminaison : ni zombie ni orphelin
client.close()
