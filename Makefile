# Two commands do everything on a fresh Debian machine: `make demo` and `make test`.
SWIFT ?= swift
BIN = $(shell $(SWIFT) build --show-bin-path 2>/dev/null)

.PHONY: all deps build release test test-swift test-runtimes test-examples test-buildpacks lint demo bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# Optimized, as `make bench` and scripts/install.sh build it; CI (.ci/run) builds it after `make test`.
release: deps
	$(SWIFT) build -c release

# Every test: Swift (unit and end-to-end with real git, sshd, Python and Node),
# the runtimes' own tests, the shared protocol tests, the buildpacks' tests, shellcheck.
test: build lint test-runtimes test-buildpacks test-swift

# The unit suites run first and on their own: the end-to-end suites block Swift
# Concurrency's threads (two here) while they wait on real processes, and a unit test
# queued behind them would only be waiting. The end-to-end suites' time limits are
# generous for the same reason: they guard against a hang, they time nothing.
test-swift:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter 'GustCoreTests|GustGitTests|GustBuildTests|GustDaemonTests|GustManifestsTests'
	$(SWIFT) test --skip-build --filter 'EndToEndTests|SSHTests' --skip IdleConnectionTests
	# Alone: it holds 300 sockets open in the test process, and Foundation's Process.run
	# has crashed (SIGSEGV in memcpy) spawning a child beside that many descriptors.
	$(SWIFT) test --skip-build --filter IdleConnectionTests

test-runtimes:
	python3 -m unittest discover -s buildpacks/python/runtime/tests -t buildpacks/python/runtime
	NODE_PATH=/usr/share/nodejs node --test buildpacks/node/runtime/test/
	python3 buildpacks/protocol-tests/run.py
	python3 -m unittest discover -s buildpacks/image/tests -t buildpacks/image
	$(MAKE) test-examples

# Each sample app's own tests, with the runtimes' test clients (gust.testing,
# gust/testing); Express from Debian's node-express (scripts/install-deps.sh).
test-examples:
	for app in examples/python-*/; do PYTHONPATH=$(CURDIR)/buildpacks/python/runtime python3 -m unittest discover -s "$$app/tests" || exit 1; done
	NODE_PATH=$(CURDIR)/buildpacks/node/runtime:/usr/share/nodejs node --test examples/node-*/test/

test-buildpacks:
	python3 -m unittest discover -s buildpacks/tests

lint:
	shellcheck buildpacks/*/bin/* hooks/* scripts/*.sh

demo: build
	scripts/demo.sh

# The numbers in docs/benchmarks.md, from a release build: Gust's own, then Gust beside
# nginx + uWSGI (installed by --bench), both started by the scripts themselves.
bench:
	scripts/install-deps.sh --bench
	$(SWIFT) build -c release
	scripts/bench.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_fork_gc.py
	scripts/bench_sandbox.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_peers.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_health.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_health.py --row trivial --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_added.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_added.py --post --op --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_added.py --post --op --two-writes --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_added.py --private --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_cpu_split.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_cpu_split.py --row trivial --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_tls.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_dev.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_console.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench.py --only console --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_oci.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
	scripts/bench_stacks.py --bin "$$($(SWIFT) build -c release --show-bin-path)"

clean:
	rm -rf .build
