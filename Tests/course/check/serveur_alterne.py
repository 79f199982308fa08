# Question 3, serveur : chacun son tour (version correcte). Le serveur
# attend une ligne du client, l'affiche, lit une ligne au clavier, l'envoie.
# Usage : python3 serveur_alterne.py [PORT]
import select
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
ma_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ma_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ma_socket.bind(("", port))
ma_socket.listen(1)
connexion, adresse = ma_socket.accept()
ma_socket.close()


def recevoir():
    donnees = connexion.recv(65536)
    while donnees and select.select([connexion], [], [], 0.2)[0]:
        suite = connexion.recv(65536)
        if not suite:
            break
        donnees += suite
    return donnees


while True:
    message = recevoir()
    if not message:
        break
    print(message.decode(errors="replace"), end="", flush=True)
    try:
        ligne = input()
    except EOFError:
        connexion.shutdown(socket.SHUT_WR)
        while connexion.recv(65536):
            pass
        break
    connexion.sendall((ligne + "\n").encode())
    if ligne == "exit":
        break
connexion.close()
