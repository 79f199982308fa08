import socket
# Crée un socket TCP
serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# L'adresse IP et le port à utiliser
hote = 'localhost'
port = 12345
# Lier le socket à l'adresse
serveur.bind((hote, port))
# Écoute jusqu'à 1 connexion
serveur.listen(1)
print("[Serveur] En attente de connexion...")
# Accepter la connexion
connexion, adresse = serveur.accept()
print(f"[Serveur] Connexion de {adresse}")
# Réception des messages
while True:
    message = connexion.recv(1024).decode()
    if message.lower() == "exit":
        print("[Serveur] Fin de la communication.")
        break
    print(f"[Client] {message}")
# Fermer les connexions
connexion.close()
serveur.close()
