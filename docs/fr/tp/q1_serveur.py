# Q1 : un serveur qui attend sur le port 8080 et affiche les lignes reçues.
# Squelette : complétez les parties marquées « À COMPLÉTER ».
# Usage : python3 q1_serveur.py [port]          (8080 par défaut)
import socket
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080

serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# À COMPLÉTER (1) : l'option SO_REUSEADDR (voir la fiche, « Optimisation »).
serveur.bind(("", PORT))
serveur.listen(1)
print("Serveur en attente sur le port", PORT, flush=True)

connexion, adresse = serveur.accept()
print("Connexion de", adresse, flush=True)

# À COMPLÉTER (2) : tant que recv(4096) ne renvoie pas b"", écrire les
# octets reçus sur la sortie standard (sys.stdout.buffer.write, puis
# sys.stdout.buffer.flush()).

print("Le client a fermé la connexion", flush=True)
connexion.close()
serveur.close()
