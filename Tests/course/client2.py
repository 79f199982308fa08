import socket
import threading
def recevoir(sock):
    while True:
        message = sock.recv(1024).decode()
        if message.lower() == "exit":
            print("[Serveur] a quitté la conversation.")
            print("[Client >>>] ", end="", flush=True)
            break
        print(f"[Serveur] {message}")
        print("[Client >>>] ", end="", flush=True)
def envoyer(sock):
    while True:
        message = input("[Client >>>] ")
        sock.sendall(message.encode())
        if message.lower() == "exit":
            break
client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(('localhost', 12345))
print("[Client] Connecté au serveur.")
# Démarrage des threads
thread1 = threading.Thread(target=recevoir, args=(client,))
thread2 = threading.Thread(target=envoyer, args=(client,))
thread1.start()
thread2.start()
thread1.join()
thread2.join()
client.close()
