# deux_envois.py : deux appels send() coup sur coup, en TCP ou en UDP.
# Usage : python3 deux_envois.py tcp|udp [port]   (vers localhost, 9000)
import socket
import sys

PROTOCOLE = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9000

if PROTOCOLE == "tcp":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", PORT))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", PORT))  # UDP : fixe seulement la destination
s.send("premier envoi\n".encode())
s.send("second envoi\n".encode())
s.close()
