# Erreur (question 3, comme les scripts de la fiche) : un seul recv(1024)
# par tour : d'un gros message, seul le premier morceau est affiché.
# Usage : python3 serveur_lit_une_fois.py [PORT]
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
ma_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ma_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ma_socket.bind(("", port))
ma_socket.listen(1)
connexion, adresse = ma_socket.accept()
ma_socket.close()

while True:
    message = connexion.recv(1024)
    if not message:
        break
    print(message.decode(errors="replace"), end="", flush=True)
    try:
        ligne = input()
    except EOFError:
        connexion.shutdown(socket.SHUT_WR)
        while connexion.recv(1024):
            pass
        break
    connexion.sendall((ligne + "\n").encode())
connexion.close()
