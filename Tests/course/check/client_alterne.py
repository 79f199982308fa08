# Question 3, client : chacun son tour (version correcte). Le client lit
# une ligne au clavier, l'envoie, attend la réponse et l'affiche.
# Usage : python3 client_alterne.py [PORT]
import select
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
ma_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ma_socket.connect(("localhost", port))


def recevoir():
    # Tout ce que le serveur a envoyé : un gros message arrive en plusieurs
    # morceaux, on lit tant qu'il en arrive.
    donnees = ma_socket.recv(65536)
    while donnees and select.select([ma_socket], [], [], 0.2)[0]:
        suite = ma_socket.recv(65536)
        if not suite:
            break
        donnees += suite
    return donnees


while True:
    try:
        ligne = input()
    except EOFError:
        ma_socket.shutdown(socket.SHUT_WR)
        while ma_socket.recv(65536):
            pass
        break
    ma_socket.sendall((ligne + "\n").encode())
    if ligne == "exit":
        break
    reponse = recevoir()
    if not reponse:
        break
    print(reponse.decode(errors="replace"), end="", flush=True)
ma_socket.close()
