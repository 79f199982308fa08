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
STATIC ?= -Xswiftc -static-executable -Xswiftc -use-ld=lld $(ORDER) $(NO_EH_FRAME_HDR)
# lld puts the functions a chat runs (Tests/bench/forkchat.order, from `make
# order-file`) first in .text: the kernel maps text 64 kB around each page
# it faults in, and the code a chat runs, scattered through 6 MB, kept 4 MB
# of it resident (docs/package.md). A function missing from the binary is
# no error (--no-warn-symbol-ordering): the order is a layout, not a list
# to check.
ORDER = -Xlinker --symbol-ordering-file=$(CURDIR)/Tests/bench/forkchat.order -Xlinker --no-warn-symbol-ordering
# No .eh_frame_hdr: its 170 kB lay between the metadata the runtime reads
# and .eh_frame, whose first word crtbeginT.o's frame_dummy reads at start
# (__register_frame_info), a 64 kB window of its own. That registration is
# how a static executable's unwinder finds its frames without the header:
# backtrace(3), a C++ throw and pthread_exit(3) still unwind (docs/package.md).
NO_EH_FRAME_HDR = -Xlinker --no-eh-frame-hdr
# The metadata of a generic type the code names ([String], [pollfd],
# Optional<Screen>) by the accessor function the compiler writes, not by a
# mangled name the runtime parses the first time: 17 names parsed at every
# start of a chat, 0.07 to 0.16 ms of it (docs/package.md), for 5 kB of code.
ACCESSORS = -Xswiftc -Xfrontend -Xswiftc -disable-concrete-type-metadata-mangled-name-accessors
RELEASE_FLAGS = -c release $(STATIC) $(ACCESSORS)
BIN = .build/release/forkchat

.PHONY: all build test unit e2e bench bench-chat bench-room bench-dead-peer compare demo diagrams install uninstall clean format lint deb dist lab-kit order-file

all: build

# SwiftPM does not relink when only the order file changed: a binary older
# than it is removed first, so that the build links it again.
build:
	@if [ Tests/bench/forkchat.order -nt $(BIN) ]; then rm -f $(BIN); fi
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

# forkchat against nc and socat, side by side in one run, and the splice
# relay (Tests/bench/splice_relay.c, the ceiling); writes
# docs/benchmarks.md and docs/benchmarks.svg. Installs nc, socat and strace
# if missing; uses perf if it works. BENCH_FLAGS=--quick: a smoke test,
# written to .build/bench-quick/.
BENCH_FLAGS ?=
bench-chat: build
	@command -v nc >/dev/null && command -v socat >/dev/null && command -v strace >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq netcat-openbsd socat strace)
	$(PYTHON) Tests/bench/bench.py $(BIN) $(BENCH_FLAGS)

# forkchat room against the course's threaded Python relay
# (Tests/bench/python_relay.py) and ngircd, an IRC server: fan-out latency
# with 10, 100, 500 and 999 clients, memory per client, a class pasting at
# once, 1000 clients held; writes docs/room-benchmarks.md. Installs ngircd
# if missing.
bench-room: build
	@command -v ngircd >/dev/null || (apt-get update -qq && apt-get install -y -qq ngircd)
	@command -v strace >/dev/null || (apt-get update -qq && apt-get install -y -qq strace)
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

# Tests/bench/forkchat.order: the functions both ends of a chat run, recorded by
# valgrind's callgrind (Tests/bench/order_file.py) and where lld put them
# (its -Map), then the build again with them first. Rerun it when the code a chat runs changes.
order-file: build
	@command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)
	$(SWIFT) build $(RELEASE_FLAGS) -Xlinker -Map=$(CURDIR)/.build/forkchat.map
	$(PYTHON) Tests/bench/order_file.py $(BIN) .build/forkchat.map Tests/bench/forkchat.order
	rm -f $(BIN)
	$(SWIFT) build $(RELEASE_FLAGS)

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

# Packages for lab machines without a Swift toolchain (README, man page).
# `make deb`: forkchat_VERSION_ARCH.deb, built with dpkg-deb alone:
# /usr/bin/forkchat (stripped: its debug symbols go to forkchat.debug, beside
# the package), the man page, and the French guide in /usr/share/doc/forkchat.
# No Depends: the binary is static (no dynamic section), and the target
# refuses one that is not (STATIC= builds need the Swift runtime, which no
# Debian package provides). `make dist`: the same binary and man page in
# forkchat-VERSION-linux-MACHINE.tar.gz, for a machine where nothing can be
# installed. OUT= sets the directory they are written to.
VERSION = $(shell sed -n 's/^let version = "forkchat \(.*\)"/\1/p' Sources/ForkChatCommand/OptionTable.swift)
ARCH = $(shell dpkg --print-architecture 2>/dev/null || uname -m)
OUT ?= .
DEB = $(OUT)/forkchat_$(VERSION)_$(ARCH).deb
DIST = forkchat-$(VERSION)-linux-$(shell uname -m)
STAGE = .build/package

# The stripped binary and its debug symbols, apart (objcopy --only-keep-debug,
# then a .gnu_debuglink to them, so that gdb finds them if they are beside it).
$(STAGE)/forkchat: build
	@if readelf -d $(BIN) | grep -q NEEDED; then \
	  echo "make deb/dist: $(BIN) is dynamically linked; build it static (make, without STATIC=)" >&2; exit 1; fi
	mkdir -p $(STAGE)
	objcopy --only-keep-debug $(BIN) $(STAGE)/forkchat.debug
	strip --strip-all -o $@ $(BIN)
	objcopy --add-gnu-debuglink=$(STAGE)/forkchat.debug $@

deb: $(STAGE)/forkchat
	rm -rf $(STAGE)/deb
	install -D -m 755 $(STAGE)/forkchat $(STAGE)/deb/usr/bin/forkchat
	install -D -m 644 docs/forkchat.1 $(STAGE)/deb/usr/share/man/man1/forkchat.1
	gzip -9n $(STAGE)/deb/usr/share/man/man1/forkchat.1
	install -D -m 644 docs/fr/guide.md $(STAGE)/deb/usr/share/doc/forkchat/guide.md
	install -D -m 644 README.md $(STAGE)/deb/usr/share/doc/forkchat/README.md
	$(MAKE) --no-print-directory lab-kit LAB_KIT=$(STAGE)/deb/usr/share/doc/forkchat
	mkdir -p $(STAGE)/deb/DEBIAN
	{ echo "Package: forkchat"; \
	  echo "Version: $(VERSION)"; \
	  echo "Architecture: $(ARCH)"; \
	  echo "Maintainer: forkchat <forkchat@localhost>"; \
	  echo "Installed-Size: $$(du -sk $(STAGE)/deb/usr | cut -f1)"; \
	  echo "Section: net"; \
	  echo "Priority: optional"; \
	  echo "Description: two-party TCP chat, one process per direction"; \
	  echo " Once connected, each side forks: the child copies the keyboard to the"; \
	  echo " socket, the parent copies the socket to the screen. Also a chat room,"; \
	  echo " and forkchat check, which tests students' own chat programs."; \
	} > $(STAGE)/deb/DEBIAN/control
	mkdir -p $(OUT)
	dpkg-deb --root-owner-group -Zxz --build $(STAGE)/deb $(DEB)
	cp $(STAGE)/forkchat.debug $(OUT)/forkchat_$(VERSION)_$(ARCH).debug
	@ls -l $(DEB)

dist: $(STAGE)/forkchat
	rm -rf $(STAGE)/$(DIST)
	install -D -m 755 $(STAGE)/forkchat $(STAGE)/$(DIST)/bin/forkchat
	install -D -m 644 docs/forkchat.1 $(STAGE)/$(DIST)/share/man/man1/forkchat.1
	install -D -m 644 docs/fr/guide.md $(STAGE)/$(DIST)/share/doc/forkchat/guide.md
	$(MAKE) --no-print-directory lab-kit LAB_KIT=$(STAGE)/$(DIST)/share/doc/forkchat
	mkdir -p $(OUT)
	tar -C $(STAGE) --owner=0 --group=0 --numeric-owner -czf $(OUT)/$(DIST).tar.gz $(DIST)
	@ls -l $(OUT)/$(DIST).tar.gz

# The lab's files, for the package and the tarball: the student's sheet and
# the teacher's book with their diagrams (LAB_KIT/fr/), and in LAB_KIT/tp/
# what each student copies into a folder of their own: the course sheet's
# scripts exactly as the sheet writes them, the skeletons to complete and
# deux_envois.py (docs/fr/tp.md, "Prérequis").
LAB_SCRIPTS = Tests/course/serveur.py Tests/course/client.py Tests/course/serveur2.py Tests/course/client2.py
lab-kit:
	install -d $(LAB_KIT)/fr/diagrams $(LAB_KIT)/tp
	install -m 644 docs/fr/tp.md docs/fr/enseignant.md $(LAB_KIT)/fr/
	install -m 644 docs/fr/diagrams/*.svg $(LAB_KIT)/fr/diagrams/
	install -m 644 $(LAB_SCRIPTS) docs/fr/tp/*.py $(LAB_KIT)/tp/

clean:
	rm -rf .build Tests/e2e/__pycache__ .pytest_cache

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests
