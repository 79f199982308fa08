# Q4 : le serveur avec fork. Après accept, deux processus, comme le client :
# - le fils lit l'entrée standard et l'écrit dans la socket ;
# - le père lit la socket et l'écrit sur la sortie standard.
# Usage : python3 q4_serveur_fork.py [port]          (8080 par défaut)
import os
import signal
import socket
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080

serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
serveur.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
serveur.bind(("", PORT))
serveur.listen(1)
print("Serveur en attente sur le port", PORT, flush=True)

connexion, adresse = serveur.accept()
serveur.close()  # un seul client : la socket d'écoute ne sert plus
print("Connexion de", adresse, flush=True)

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
        connexion.sendall(ligne)
        if ligne.strip() == b"exit":
            break
    connexion.shutdown(socket.SHUT_WR)  # demi-fermeture : FIN part
    os._exit(0)

# Le père : socket -> écran.
while True:
    donnees = connexion.recv(4096)
    if not donnees:  # b"" : le client a fini d'envoyer
        break
    sys.stdout.buffer.write(donnees)
    sys.stdout.buffer.flush()

signal.signal(signal.SIGCHLD, signal.SIG_DFL)
if not fils_attendu:
    os.kill(pid, signal.SIGTERM)  # le fils attend encore le clavier
    os.waitpid(pid, 0)  # attendre sa terminaison : ni zombie ni orphelin
connexion.close()
