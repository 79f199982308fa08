# Q2 : un client qui envoie au serveur chaque ligne tapée au clavier.
# Squelette : complétez la partie marquée « À COMPLÉTER ».
# Usage : python3 q2_client.py [hôte [port]]    (localhost 8080 par défaut)
import socket
import sys

HOTE = sys.argv[1] if len(sys.argv) > 1 else "localhost"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((HOTE, PORT))
print("Connecté à", HOTE, "port", PORT, flush=True)

# À COMPLÉTER : lire une ligne (sys.stdin.buffer.readline() renvoie b""
# à la fin du clavier, Ctrl-D) et l'envoyer avec sendall, jusqu'à la fin.

client.close()
