# Extension : le client avec deux threads au lieu de deux processus.
# Le thread principal lit la socket ; le thread « emission » lit le clavier.
# Usage : python3 q5_client_threads.py [hôte [port]]  (localhost 8080)
import socket
import sys
import threading

HOTE = sys.argv[1] if len(sys.argv) > 1 else "localhost"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect((HOTE, PORT))
print("Connecté à", HOTE, "port", PORT, flush=True)


def envoyer():
    while True:
        try:
            ligne = input()  # comme client2.py de la fiche
        except EOFError:  # Ctrl-D
            break
        client.sendall((ligne + "\n").encode())
        if ligne == "exit":
            break
    client.shutdown(socket.SHUT_WR)  # FIN : le serveur voit la fin


# daemon : bloqué dans readline(), ce thread ne retient pas la fin du
# programme quand le serveur a fermé.
emission = threading.Thread(target=envoyer, daemon=True)
emission.start()

while True:
    donnees = client.recv(4096)
    if not donnees:
        break
    sys.stdout.buffer.write(donnees)
    sys.stdout.buffer.flush()

client.close()
