"""ngircd, a production IRC server in C (Debian package `ngircd`), as the
room benchmark's real-world reference: started in the foreground with a
temporary configuration on a free loopback port, and spoken to in IRC
(NICK, USER, JOIN, PRIVMSG; RFC 2812).

Every client joins one channel, #room, so that a PRIVMSG to it goes to every
other client, as a line does in forkchat room. ngircd's defaults are kept
(its flood control included: a user who sends more than 256 bytes or 3
commands in a second gets a second of penalty), except:

- no limit on connections, per address or in all (the benchmark's clients
  all come from 127.0.0.1), no DNS or ident lookups, no PAM;
- `relaxed=True` makes a client an IRC operator with user mode +F ("relaxed
  flood protection"): the fan-out benchmark sends a line every 2 ms from
  client to client in turn, and with 10 clients, each would otherwise be
  penalised for sending 50 lines a second, which would measure the penalty,
  not the relay.
"""

import os
import shutil
import subprocess
import tempfile

CHANNEL = b"#room"
OPERATOR = b"bench"

CONFIG = """[Global]
Name = bench.forkchat.test
Info = forkchat room benchmark
AdminInfo1 = forkchat
AdminInfo2 = benchmark
AdminEMail = bench@forkchat.test
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = "bench"
PidFile = {directory}/ngircd.pid

[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 20
PingTimeout = 600
PongTimeout = 300

[Options]
DNS = no
Ident = no
PAM = no

[Operator]
Name = {operator}
Password = {operator}
"""


def available():
    return shutil.which("ngircd")


class Ngircd:
    """ngircd on 127.0.0.1:`port`, in the foreground (--nodaemon) and in a
    session of its own, its configuration and log in a temporary directory.
    The caller ends `proc` (SIGTERM), then calls `cleanup()`."""

    def __init__(self, port):
        self.directory = tempfile.mkdtemp(prefix="ngircd-bench-")
        os.chmod(self.directory, 0o777)  # ngircd drops root for "nobody": its pid file goes here
        self.config = os.path.join(self.directory, "ngircd.conf")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(port=port, directory=self.directory, operator=OPERATOR.decode()))
        self.log = open(os.path.join(self.directory, "ngircd.log"), "wb")
        self.proc = subprocess.Popen([available(), "--nodaemon", "--config", self.config], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def cleanup(self):
        """Once the process has ended: its directory goes."""
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def register(nick: str, relaxed=True) -> bytes:
    """What a client sends to register as `nick` and join the channel."""
    n = nick.encode()
    lines = [b"NICK " + n, b"USER " + n + b" 0 * :" + n]
    if relaxed:
        lines += [b"OPER " + OPERATOR + b" " + OPERATOR, b"MODE " + n + b" +F"]
    lines.append(b"JOIN " + CHANNEL)
    return b"".join(line + b"\r\n" for line in lines)


# The end of the NAMES list that answers the client's own JOIN: it is in.
JOINED = b" 366 "


def privmsg(text: bytes) -> bytes:
    """A line to everyone else in the channel."""
    return b"PRIVMSG " + CHANNEL + b" :" + text + b"\r\n"
