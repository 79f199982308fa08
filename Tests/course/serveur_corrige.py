# serveur_corrige.py : serveur.py de la fiche « Communication
# interprocessus », corrigé. Chaque changement est marqué CORRECTION :
# 1. SO_REUSEADDR : le serveur se relance aussitôt après avoir fini, malgré
#    la connexion restée en TIME_WAIT ;
# 2. recv() qui renvoie b"" : le client a fermé (FIN) ; plus rien ne
#    viendra, on sort de la boucle (la fiche boucle alors sans fin) ;
# 3. "exit" reconnu avec ou sans fin de ligne ("exit", "exit\n" de nc ou
#    de forkchat, "exit\r\n" de telnet) ;
# 4. le port en argument, pour que chaque binôme prenne le sien.
# Usage : python3 serveur_corrige.py [port]      (12345 par défaut)
import socket
import sys

serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
hote = 'localhost'
port = int(sys.argv[1]) if len(sys.argv) > 1 else 12345  # CORRECTION 4
serveur.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # CORRECTION 1
serveur.bind((hote, port))
serveur.listen(1)
print("[Serveur] En attente de connexion...")
connexion, adresse = serveur.accept()
print(f"[Serveur] Connexion de {adresse}")
while True:
    donnees = connexion.recv(1024)
    if not donnees:  # CORRECTION 2
        print("[Serveur] Le client a fermé la connexion.")
        break
    message = donnees.decode()
    if message.rstrip("\r\n").lower() == "exit":  # CORRECTION 3
        print("[Serveur] Fin de la communication.")
        break
    print(f"[Client] {message}")
connexion.close()
serveur.close()
