# serveur2.py : le serveur du TP « threads » : la même conversation dans
# les deux sens, avec un thread qui reçoit et un thread qui envoie.
# Chaque message part sans fin de ligne ; "exit", tapé d'un côté ou de
# l'autre, termine la conversation.
#
# Les threads de threading sont des threads du système : `ps -L` en
# montre trois (le thread principal, reception, emission).
#
# Usage : python3 serveur2.py [port]      (port 8080 par défaut)
import socket
import sys
import threading

HOTE = ""  # toutes les interfaces
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8080

serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
serveur.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
serveur.bind((HOTE, PORT))
serveur.listen(1)
print("Serveur en attente sur le port", PORT)

connexion, adresse = serveur.accept()
print("Connexion de", adresse)


def recevoir():
    while True:
        message = connexion.recv(1024).decode("utf-8")
        if not message:  # b"" : le client a fermé la connexion
            print("Le client a fermé la connexion")
            break
        print("Reçu :", message)
        if message == "exit":
            break


def envoyer():
    while True:
        message = input()
        connexion.sendall(message.encode("utf-8"))
        if message == "exit":
            # Fin de nos envois (FIN) : le client le voit, ferme à son tour,
            # et recv() du thread reception renvoie b"".
            connexion.shutdown(socket.SHUT_WR)
            break


reception = threading.Thread(target=recevoir)
emission = threading.Thread(target=envoyer, daemon=True)  # bloqué dans input() : ne retient pas la fin
reception.start()
emission.start()
reception.join()

print("Fin de la conversation")
connexion.close()
serveur.close()
