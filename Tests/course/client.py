# client.py : le client du TP, tel que la fiche l'écrit.
# Il se connecte au serveur, envoie chaque message tapé au clavier (sans
# fin de ligne : input() l'enlève et sendall() n'en ajoute pas) et
# s'arrête après avoir envoyé "exit".
#
# Usage : python3 client.py [hôte [port]]      (localhost 8080 par défaut)
import socket
import sys

HOTE = sys.argv[1] if len(sys.argv) > 1 else "localhost"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((HOTE, PORT))
print("Connecté à", HOTE, "port", PORT)

while True:
    message = input("Message : ")
    client.sendall(message.encode("utf-8"))
    if message == "exit":
        break

print("Fin de la conversation")
client.close()
