# Q3 : le serveur de la conversation à tour de rôle.
# 5) attend une ligne du client, 6) l'affiche, 7) lit une ligne au clavier,
# 8) l'envoie au client, et recommence.
# Squelette : complétez la boucle, en suivant le client.
# Usage : python3 q3_serveur_alterne.py [port]        (8080 par défaut)
import select
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


def recevoir(s):
    """(Fourni.) Tout ce que l'autre a envoyé (b"" s'il a fermé) : un gros message
    arrive en plusieurs morceaux ; on lit tant qu'il en arrive (select
    attend au plus 0,2 s le morceau suivant)."""
    donnees = s.recv(65536)
    while donnees and select.select([s], [], [], 0.2)[0]:
        suite = s.recv(65536)
        if not suite:
            break
        donnees += suite
    return donnees


# À COMPLÉTER : la boucle 5) 6) 7) 8) ; en 5), recevoir(connexion) ; elle
# s'arrête quand le client a fermé (b"" en 5) ou à la fin du clavier
# (b"" en 7).

connexion.close()
serveur.close()
