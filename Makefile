# hoplab — see README.md. Every target installs what it needs on Debian/Ubuntu.
GO       ?= go
GOFLAGS  ?=
BENCHTIME ?= 20000x

# Debian packages each job needs.
TEST_DEPS = clang llvm iproute2
GEN_DEPS  = clang llvm libbpf-dev

.PHONY: all build test generate bench lint deps-test deps-gen

all: build

build:
	$(GO) build ./...

deps-test:
	@tools/ensure-deps.sh $(TEST_DEPS)

deps-gen:
	@tools/ensure-deps.sh $(GEN_DEPS)

## test: unit tests and BPF tests on the host kernel (BPF tests need root).
test: deps-test
	$(GO) vet ./...
	$(GO) test -count=1 ./...

## generate: rebuild the bpf2go objects from datapath/bpf (needs clang).
generate: deps-gen
	$(GO) generate ./datapath/...

## bench: Go benchmarks, including BPF_PROG_TEST_RUN per-packet timings.
bench: deps-test
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./datapath/...

## lint: gofmt, vet, and a clean regenerate when clang is present.
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	@if command -v clang >/dev/null; then $(MAKE) generate && git diff --exit-code -- datapath; fi

## fixtures: regenerate the pcap fixtures and their expectations (fixtures/data); git diff stays clean.
.PHONY: fixtures
fixtures:
	$(GO) run ./fixtures/gen
