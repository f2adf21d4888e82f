# evindex: an event-sourced index of file trees.
#
# Targets:
#   make deps           install what is missing (liblmdb-dev, pkg-config) with apt-get
#   make build          release build: .build/release/evindex
#   make check          make lint, then build everything (tests too) with warnings as errors, in .build-check/
#   make run DIR=path   deps + build + index DIR (database: $EVINDEX_DB or the XDG default)
#   make test           deps + swift test (real LMDB in temporary directories)
#   make bench          deps + build + benchmark against find, ncdu, gdu and plocate on 100k- and 1M-entry trees
#   make format         swift format the sources in place (.swift-format: the project's style)
#   make lint           swift format lint: exit 1 on any difference from that style
#   make clean          remove build products

SWIFT ?= swift
APT_GET ?= apt-get
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
EVINDEX := .build/release/evindex
# The release binary's speed: run-time exclusivity checks off (a tenth of a first index's
# instructions; debug builds and the tests keep them) and cross-module optimization (the
# walker specialized for the real filesystem). Here, not in Package.swift, so the package
# has no unsafe flags (Docs/PERFORMANCE.md). The Swift runtime linked in statically: a
# command starts in 4.4 ms instead of 6 (no search for a dozen shared libraries), which is
# most of what a selective `find` costs, and the binary runs on a machine without Swift.
RELEASE_FLAGS := -Xswiftc -enforce-exclusivity=unchecked -Xswiftc -cross-module-optimization --static-swift-stdlib -Xswiftc -use-ld=lld

.PHONY: deps build check run test bench format lint clean

deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists lmdb; then \
		echo "installing liblmdb-dev and pkg-config"; \
		$(SUDO) $(APT_GET) install -y liblmdb-dev pkg-config || \
		{ $(SUDO) $(APT_GET) update && $(SUDO) $(APT_GET) install -y liblmdb-dev pkg-config; }; \
	fi

build: deps
	$(SWIFT) build -c release --product evindex $(RELEASE_FLAGS)

check: deps lint
	EVINDEX_WARNINGS_AS_ERRORS=1 $(SWIFT) build --build-tests --build-path .build-check

run: build
	@if [ -z "$(DIR)" ]; then echo "usage: make run DIR=path/to/tree" >&2; exit 2; fi
	$(EVINDEX) run "$(DIR)"
	$(EVINDEX) du "$(DIR)" --depth 1

# Peers the tests use as oracles (ncdu writes exports evindex imports, gdu reads the ones it writes).
TEST_TOOLS = ncdu gdu

test: deps
	@command -v python3 >/dev/null || { echo "python3 is needed by the tests (mktree.py)" >&2; exit 2; }
	@for t in $(TEST_TOOLS); do command -v $$t >/dev/null 2>&1 || { echo "installing $$t (a test oracle)"; \
		$(SUDO) $(APT_GET) install -y $$t || { $(SUDO) $(APT_GET) update && $(SUDO) $(APT_GET) install -y $$t; }; }; done
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: build
	python3 Tests/Benchmarks/bench.py --evindex $(EVINDEX) --also-small $(if $(BASELINE),--baseline $(BASELINE))

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

clean:
	rm -rf .build
