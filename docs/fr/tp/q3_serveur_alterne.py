# Q3 : le serveur de la conversation à tour de rôle.
# 5) attend une ligne du client, 6) l'affiche, 7) lit une ligne au clavier,
# 8) l'envoie au client, et recommence.
# Squelette : complétez la boucle, en suivant le client.
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
messages = connexion.makefile("rb")  # messages.readline() : une ligne

# À COMPLÉTER : la boucle 5) 6) 7) 8) ; elle s'arrête quand le client a
# fermé (b"" en 5) ou à la fin du clavier (b"" en 7).

messages.close()
connexion.close()
serveur.close()
