# jinglepush — the commands a developer needs. `make help` lists them.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# What the tests start: redis-server, redis-sentinel, Prosody (+ prosody-modules)
# and ejabberd, all from Debian's packages; and the checkers of deploy/:
# promtool (package prometheus) for the alert rules, systemd-analyze (systemd)
# for the unit.
DEB_PACKAGES := redis-server redis-sentinel prosody prosody-modules ejabberd prometheus systemd

.PHONY: help build demo test test-backports bench soak check unit deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

build: ## build bin/jinglepush and bin/jinglepush-call
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/jinglepush ./cmd/jinglepush
	$(GO) build -o bin/jinglepush-call ./cmd/jinglepush-call

demo: ## run jinglepush for real: local Prosody + Redis, dry-run pushes, a test call
	deploy/demo/run.sh

test: deps check ## the whole suite: vet, gofmt, unit and end-to-end tests with -race, promtool and systemd-analyze on deploy/
	JINGLEPUSH_REQUIRE_SERVERS=1 $(GO) test -race -count=1 -timeout 30m ./...

test-backports: ## the server tests on Prosody 13 and ejabberd 24.12 from bookworm-backports (swaps this machine's packages, restores them at the end)
	.ci/test-backports

bench: deps ## micro-benchmarks, then the load harness: the table of docs/performance.md
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./jingle/ ./component/ ./sessions/ ./pushnotify/
	$(GO) run ./cmd/jinglepush-bench -rates 0,10000,1000 -duration 20s -cluster -processes 2

soak: deps ## 1000 calls/s for 5 minutes, RSS sampled every 10 s
	$(GO) run ./cmd/jinglepush-bench -rates 1000 -firehose=false -ceiling=false -soak 5m

check: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

unit: ## the tests that need no server (the others skip)
	$(GO) test -race ./...

deps: ## install the Debian packages the tests start, when missing
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "installing:$$missing"; \
	  $$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y $$missing; \
	fi

clean: ## remove build outputs and the demo's files
	rm -rf bin .demo
