# serveur.py : le serveur du TP, tel que la fiche l'écrit.
# Il attend un client sur le port 8080, affiche chaque message reçu et
# s'arrête quand le message est exactement "exit".
#
# Son défaut est gardé exprès (docs/course.md, Q3) : quand le client ferme
# la connexion, recv() renvoie b"" (fin de fichier), message vaut "", qui
# n'est pas "exit", et la boucle affiche "Reçu : " sans fin. La version
# corrigée est serveur_corrige.py.
#
# Usage : python3 serveur.py [port]      (port 8080 par défaut)
import socket
import sys

HOTE = ""  # toutes les interfaces
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080

serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
serveur.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
serveur.bind((HOTE, PORT))
serveur.listen(1)
print("Serveur en attente sur le port", PORT)

connexion, adresse = serveur.accept()
print("Connexion de", adresse)

while True:
    message = connexion.recv(1024).decode("utf-8")
    print("Reçu :", message)
    if message == "exit":
        break

print("Fin de la conversation")
connexion.close()
serveur.close()
