# Extension : le client avec deux threads au lieu de deux processus.
# Le thread principal lit la socket ; le thread « emission » lit le clavier.
# Squelette : complétez les parties marquées « À COMPLÉTER ».
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
    # À COMPLÉTER (1) : comme le fils de Q4, mais avec input() comme
    # client2.py de la fiche (EOFError à Ctrl-D ; input() enlève la fin de
    # ligne : la remettre) : envoyer, puis la demi-fermeture.
    # (Pas d'os._exit ici : pourquoi ?)
    pass


# daemon : un thread bloqué dans readline() ne retient pas la fin du
# programme quand le serveur a fermé.
emission = threading.Thread(target=envoyer, daemon=True)
emission.start()

# À COMPLÉTER (2) : comme le père de Q4 : socket -> écran jusqu'à b"".

client.close()
