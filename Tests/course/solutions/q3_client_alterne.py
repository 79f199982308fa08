# Q3 : le client de la conversation à tour de rôle.
# 1) lit une ligne au clavier, 2) l'envoie, 3) attend une ligne du serveur,
# 4) l'affiche, et recommence.
# Usage : python3 q3_client_alterne.py [hôte [port]]   (localhost 8080)
import select
import socket
import sys

HOTE = sys.argv[1] if len(sys.argv) > 1 else "localhost"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((HOTE, PORT))
print("Connecté à", HOTE, "port", PORT, flush=True)


def recevoir(s):
    """Tout ce que l'autre a envoyé (b"" s'il a fermé) : un gros message
    arrive en plusieurs morceaux ; on lit tant qu'il en arrive (select
    attend au plus 0,2 s le morceau suivant)."""
    donnees = s.recv(65536)
    while donnees and select.select([s], [], [], 0.2)[0]:
        suite = s.recv(65536)
        if not suite:
            break
        donnees += suite
    return donnees


while True:
    ligne = sys.stdin.buffer.readline()  # 1) b"" : fin du clavier
    if not ligne:
        break
    client.sendall(ligne)  # 2)
    reponse = recevoir(client)  # 3) b"" : le serveur a fermé
    if not reponse:
        break
    sys.stdout.buffer.write(reponse)  # 4)
    sys.stdout.buffer.flush()

client.close()
