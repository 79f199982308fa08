# Q3 : le client de la conversation à tour de rôle.
# 1) lit une ligne au clavier, 2) l'envoie, 3) attend une ligne du serveur,
# 4) l'affiche, et recommence.
# Squelette : complétez les parties marquées « À COMPLÉTER ».
# Usage : python3 q3_client_alterne.py [hôte [port]]   (localhost 8080)
import socket
import sys

HOTE = sys.argv[1] if len(sys.argv) > 1 else "localhost"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((HOTE, PORT))
print("Connecté à", HOTE, "port", PORT, flush=True)
reponses = client.makefile("rb")  # reponses.readline() : une ligne de la socket

while True:
    ligne = sys.stdin.buffer.readline()  # 1) b"" : fin du clavier
    if not ligne:
        break
    # À COMPLÉTER 2) envoyer la ligne.
    # À COMPLÉTER 3) attendre une ligne du serveur (b"" : il a fermé).
    # À COMPLÉTER 4) l'afficher (sys.stdout.buffer.write, puis flush()).

reponses.close()
client.close()
