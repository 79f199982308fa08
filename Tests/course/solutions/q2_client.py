# Q2 : un client qui envoie au serveur chaque ligne tapée au clavier.
# Usage : python3 q2_client.py [hôte [port]]    (localhost 8080 par défaut)
import socket
import sys

HOTE = sys.argv[1] if len(sys.argv) > 1 else "localhost"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((HOTE, PORT))
print("Connecté à", HOTE, "port", PORT, flush=True)

while True:
    ligne = sys.stdin.buffer.readline()  # b"" : fin du clavier (Ctrl-D)
    if not ligne:
        break
    client.sendall(ligne)  # la ligne avec sa fin de ligne

client.close()
