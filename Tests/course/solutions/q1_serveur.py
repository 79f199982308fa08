# Q1 : un serveur qui attend sur le port 8080 et affiche les lignes reçues.
# Usage : python3 q1_serveur.py [port]          (8080 par défaut)
import socket
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080

serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# Relancer le serveur tout de suite, malgré les connexions en TIME_WAIT.
serveur.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
serveur.bind(("", PORT))
serveur.listen(1)
print("Serveur en attente sur le port", PORT, flush=True)

connexion, adresse = serveur.accept()
print("Connexion de", adresse, flush=True)

while True:
    donnees = connexion.recv(4096)
    if not donnees:  # b"" : le client a fermé sa moitié (FIN)
        break
    sys.stdout.buffer.write(donnees)  # les octets tels quels, fins de ligne comprises
    sys.stdout.buffer.flush()

print("Le client a fermé la connexion", flush=True)
connexion.close()
serveur.close()
