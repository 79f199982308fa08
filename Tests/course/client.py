import socket
# Crée un socket TCP
client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# Se connecter au serveur
client.connect(('localhost', 12345))
print("[Client] Connecté au serveur. Tapez vos messages :")
# Lire et envoyer les messages
while True:
    message = input(">>> ")
    client.sendall(message.encode())
    if message.lower() == "exit":
        break
# Fermer la connexion
client.close()
