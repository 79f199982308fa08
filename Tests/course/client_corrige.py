# client_corrige.py : client.py de la fiche « Communication
# interprocessus », corrigé. Chaque changement est marqué CORRECTION :
# 1. l'hôte et le port en arguments (le serveur du voisin, le port du
#    binôme) ;
# 2. un serveur absent est dit en une ligne, sans trace d'erreur Python ;
# 3. la fin du clavier (Ctrl-D) termine proprement, comme "exit".
# Usage : python3 client_corrige.py [hôte [port]]   (localhost 12345)
import socket
import sys

hote = sys.argv[1] if len(sys.argv) > 1 else 'localhost'  # CORRECTION 1
port = int(sys.argv[2]) if len(sys.argv) > 2 else 12345
client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    client.connect((hote, port))
except ConnectionRefusedError:  # CORRECTION 2
    sys.exit(f"[Client] Aucun serveur sur {hote} port {port}.")
print("[Client] Connecté au serveur. Tapez vos messages :")
while True:
    try:
        message = input(">>> ")
    except EOFError:  # CORRECTION 3
        break
    client.sendall(message.encode())
    if message.lower() == "exit":
        break
client.close()
