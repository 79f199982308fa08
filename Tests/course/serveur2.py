import socket
import threading
def recevoir(connexion):
    while True:
        try:
            message = connexion.recv(1024).decode()
            if not message or message.lower() == "exit":
                print("[Client] a quitté la conversation.")
                print("[Serveur >>>] ", end="", flush=True)
                break
            print(f"[Client] {message}")
            print("[Serveur >>>] ", end="", flush=True)
        except: # noqa: E722
            break
def envoyer(connexion):
    while True:
        try:
            message = input("[Serveur >>>] ")
            connexion.sendall(message.encode())
            if message.lower() == "exit":
                break
        except: # noqa: E722
            break
# Création du serveur
serveur = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
serveur.bind(('localhost', 12345))
serveur.listen(1)
print("[Serveur] En attente de connexion...")
connexion, adresse = serveur.accept()
print(f"[Serveur] Connecté à {adresse}")
# Démarrage des threads
thread1 = threading.Thread(target=recevoir, args=(connexion,))
thread2 = threading.Thread(target=envoyer, args=(connexion,))
thread1.start()
thread2.start()
thread1.join()
thread2.join()
connexion.close()
serveur.close()
