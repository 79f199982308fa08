# forkchat: `make` builds, `make test` tests, `make demo` shows a chat.
PREFIX ?= /usr/local
SWIFT  ?= swift
PYTHON ?= python3
# A fully static executable, linked by lld (from the toolchain): it starts
# in under 1 ms and holds less than half the memory of a dynamically linked
# Swift program (docs/benchmarks.md). glibc's getaddrinfo still loads NSS
# modules other than "files" and "dns" at run time, from the glibc it was
# built with; `make` builds on the machine that runs it. STATIC= (empty)
# links the Swift runtime dynamically instead.
STATIC ?= -Xswiftc -static-executable -Xswiftc -use-ld=lld
RELEASE_FLAGS = -c release $(STATIC)
BIN = .build/release/forkchat

.PHONY: all build test unit e2e bench bench-chat bench-room bench-dead-peer compare demo diagrams install uninstall clean format lint

all: build

build:
	$(SWIFT) build $(RELEASE_FLAGS)

# Unit tests (Swift Testing), then the end-to-end suite against the release
# binary, the one `make install` installs.
test: build unit e2e

unit:
	$(SWIFT) test --disable-xctest

# The end-to-end suite runs E2E_JOBS tests at once (pytest-xdist): they
# mostly wait on processes and sockets, so more workers than cores pay
# (Tests/e2e/README.md has the measurements). E2E_JOBS=1: one at a time.
E2E_JOBS ?= 8
e2e: build
	FORKCHAT=$(CURDIR)/$(BIN) $(PYTHON) -m pytest Tests/e2e -q $(if $(filter 1,$(E2E_JOBS)),,-n $(E2E_JOBS) --dist loadgroup)

# Both benchmarks: the two-party chat against nc and socat, then the room.
bench: bench-chat bench-room

# forkchat against nc and socat, side by side in one run; writes
# docs/benchmarks.md and docs/benchmarks.svg. Installs nc, socat and strace
# if missing.
bench-chat: build
	@command -v nc >/dev/null && command -v socat >/dev/null && command -v strace >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq netcat-openbsd socat strace)
	$(PYTHON) Tests/bench/bench.py $(BIN)

# forkchat room against the course's threaded Python relay
# (Tests/bench/python_relay.py) and ngircd, an IRC server: fan-out latency
# with 10, 100, 500 and 999 clients, memory per client, a class pasting at
# once, 1000 clients held; writes docs/room-benchmarks.md. Installs ngircd
# if missing.
bench-room: build
	@command -v ngircd >/dev/null || (apt-get update -qq && apt-get install -y -qq ngircd)
	$(PYTHON) Tests/bench/room_bench.py $(BIN)

# A vanished peer: seconds until forkchat, nc -N and socat notice it, idle
# and busy, both roles, all at once in pairs of network namespaces (root;
# about 17 minutes, most of it waiting for the kernel). Prints a table.
bench-dead-peer: build
	$(PYTHON) Tests/bench/dead_peer.py $(BIN)

# The four --mode values side by side (processes, syscalls per line,
# latency, Stevens' echo test, throughput); writes docs/modes.md.
compare: build
	@command -v strace >/dev/null || (apt-get update -qq && apt-get install -y -qq strace)
	$(PYTHON) Tests/bench/compare.py $(BIN)

demo: build
	sh docs/demo.sh $(BIN)

# Sequence diagrams of each ending, drawn from real runs of two forkchat
# processes with --trace (Tests/diagrams/diagrams.py): docs/diagrams/NAME.svg,
# and NAME.txt, the two traces merged, for a text-only terminal; the same in
# French in docs/fr/diagrams; and each side's processes and descriptors
# after fork, read from /proc (processes-descriptors, processus-descripteurs).
diagrams: build
	$(PYTHON) Tests/diagrams/diagrams.py $(BIN) docs/diagrams --fr docs/fr/diagrams

# Installs what `make` built, and never builds: `sudo make install` runs as
# root, whose PATH (sudo's secure_path) has no swift.
install:
	@test -x $(BIN) || { echo "make install: $(BIN) is not built: run 'make' first (as yourself, not root), then 'make install'" >&2; exit 1; }
	install -D -s -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/forkchat
	install -D -m 644 docs/forkchat.1 $(DESTDIR)$(PREFIX)/share/man/man1/forkchat.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/forkchat $(DESTDIR)$(PREFIX)/share/man/man1/forkchat.1

clean:
	rm -rf .build Tests/e2e/__pycache__ .pytest_cache

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests
