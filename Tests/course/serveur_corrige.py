# serveur_corrige.py : serveur.py, corrigé.
# Deux changements, marqués CORRECTION :
# 1. recv() qui renvoie b"" veut dire que le client a fermé la connexion
#    (il a envoyé FIN) : plus rien ne viendra, on sort de la boucle ;
# 2. "exit" est reconnu avec ou sans fin de ligne ("exit", "exit\n",
#    "exit\r\n"), que le client l'envoie sans rien (input() + sendall),
#    comme nc ou forkchat ("exit\n") ou comme telnet ("exit\r\n").
#
# Usage : python3 serveur_corrige.py [port]      (port 8080 par défaut)
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
    donnees = connexion.recv(1024)
    if not donnees:  # CORRECTION 1 : b"", la fin de fichier
        print("Le client a fermé la connexion")
        break
    message = donnees.decode("utf-8")
    print("Reçu :", message)
    if message.rstrip("\r\n") == "exit":  # CORRECTION 2
        break

print("Fin de la conversation")
connexion.close()
serveur.close()
