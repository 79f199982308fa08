# forkchat: `make` builds, `make test` tests, `make demo` shows a chat.
PREFIX ?= /usr/local
SWIFT  ?= swift
PYTHON ?= python3
RELEASE_FLAGS = -c release
BIN = .build/release/forkchat

.PHONY: all build test unit e2e demo install uninstall clean format lint

all: build

build:
	$(SWIFT) build $(RELEASE_FLAGS)

# Unit tests (Swift Testing), then the end-to-end suite against the release
# binary, the one `make install` installs.
test: build unit e2e

unit:
	$(SWIFT) test

e2e: build
	FORKCHAT=$(CURDIR)/$(BIN) $(PYTHON) -m pytest Tests/e2e -q

demo: build
	sh docs/demo.sh $(BIN)

install: build
	install -D -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/forkchat

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/forkchat

clean:
	rm -rf .build Tests/e2e/__pycache__ .pytest_cache

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests
