# Q3 : le serveur de la conversation à tour de rôle.
# 5) attend une ligne du client, 6) l'affiche, 7) lit une ligne au clavier,
# 8) l'envoie au client, et recommence.
# Usage : python3 q3_serveur_alterne.py [port]        (8080 par défaut)
import socket
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080

serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
serveur.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
serveur.bind(("", PORT))
serveur.listen(1)
print("Serveur en attente sur le port", PORT, flush=True)

connexion, adresse = serveur.accept()
print("Connexion de", adresse, flush=True)
messages = connexion.makefile("rb")

while True:
    ligne = messages.readline()  # 5) b"" : le client a fermé
    if not ligne:
        break
    sys.stdout.buffer.write(ligne)  # 6)
    sys.stdout.buffer.flush()
    reponse = sys.stdin.buffer.readline()  # 7) b"" : fin du clavier
    if not reponse:
        break
    connexion.sendall(reponse)  # 8)

messages.close()
connexion.close()
serveur.close()
