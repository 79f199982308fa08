#!/bin/sh
# make demo: a scripted chat between two forkchat processes on loopback,
# in one terminal. Alice listens, Bob connects; each one's "keyboard" is a
# small script. Each line shows whose screen it appeared on.
set -eu
bin=${1:-.build/release/forkchat}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

alice() { sleep 0.6; echo "hi Bob, it's Alice"; sleep 1.2; echo "after fork() I am two processes"; sleep 1.2; }
bob() { sleep 1.2; echo "hello Alice"; sleep 1.2; echo "me too: one reads, one writes"; sleep 1.2; }

echo "\$ forkchat listen $port          # Alice"
echo "\$ forkchat connect 127.0.0.1 $port   # Bob"
echo
alice | "$bin" listen "$port" 2>&1 | sed -u 's/^/  Alice sees | /' &
sleep 0.3
bob | "$bin" connect 127.0.0.1 "$port" 2>&1 | sed -u 's/^/  Bob sees   | /' &
sleep 1.8
echo
# Only the processes this script started: its children (each forkchat of
# the two pipelines) and theirs, not other users' forkchat processes.
ours() { ps -o pid=,ppid=,args= -e | awk -v me=$$ '$2 == me && $3 ~ /forkchat/ { print $1 }' | paste -sd, -; }
show() { pids=$(ours); [ -z "$pids" ] || ps -o pid,ppid,stat,args --pid "$pids" --ppid "$pids"; }
echo "\$ ps -o pid,ppid,stat,args --pid ... --ppid ...   # only what this demo started: two processes per side"
show | sed 's/^/  /'
echo
wait
echo
echo "Both sides' input ended; each sent FIN with shutdown(SHUT_WR), and each"
echo "parent exited once the peer had closed. No process of this demo is left:"
if [ -n "$(show)" ]; then show | sed 's/^/  /'; else echo "  (none)"; fi
