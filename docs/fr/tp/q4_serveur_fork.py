# Q4 : le serveur avec fork. Après accept, deux processus, comme le client :
# - le fils lit l'entrée standard et l'écrit dans la socket ;
# - le père lit la socket et l'écrit sur la sortie standard.
# Squelette : reprenez votre client q4_client_fork.py à partir de
# « fils_attendu = False », en remplaçant client par connexion.
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

# À COMPLÉTER : SIGCHLD, fork, le fils (clavier -> socket, demi-fermeture,
# os._exit), le père (socket -> écran), puis attendre le fils.

connexion.close()
