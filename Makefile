# hoplab — see README.md. Every target installs what it needs on Debian/Ubuntu.
GO       ?= go
GOFLAGS  ?=
BENCHTIME ?= 20000x

# Debian packages each job needs.
TEST_DEPS = clang llvm iproute2 'chromium|chromium-browser'
GEN_DEPS  = clang llvm libbpf-dev

.PHONY: all build test generate bench lint fuzz deps-test deps-gen

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

## bench: Go benchmarks, including BPF_PROG_TEST_RUN per-packet timings and reading a 100,000-packet capture.
bench: deps-test
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./datapath/...
	$(GO) test -run '^$$' -bench . -benchtime 5x ./internal/capture

## mutants: break the code on purpose, one change at a time (BPF C, journey, topologies, capture), and report which test noticed; MUTANTS_SAMPLE=N tests N per area, MUTANTS_VM=1 also runs the e2e suites on BPF survivors (root for the BPF part).
MUTANTS_SAMPLE ?= 0
MUTANTS_AREAS  ?= bpf,journey,topologies,capture
.PHONY: mutants
mutants: deps-gen
	$(GO) run ./tools/mutants -area '$(MUTANTS_AREAS)' -sample $(MUTANTS_SAMPLE) $(if $(MUTANTS_SEED),-seed $(MUTANTS_SEED))

## fuzz: each fuzz target for FUZZTIME (default 60s) in turn, from its committed seeds (PKG/testdata/fuzz/FuzzX); prints executions and new corpus entries per target and a summary, fails when one finds a crash (written to PKG/testdata/fuzz/FuzzX). FUZZ_TARGETS=pkg:FuzzX picks targets.
FUZZTIME         ?= 60s
FUZZMINIMIZETIME ?= 5s
FUZZ_TARGETS     ?= topologies:FuzzParse vmtest/cluster:FuzzEncode internal/capture:FuzzRead datapath:FuzzDecodeEvent internal/journey:FuzzMerge vmtest/cluster:FuzzPlan
.PHONY: fuzz
fuzz:
	@tools/fuzz.sh '$(GO)' '$(FUZZTIME)' '$(FUZZMINIMIZETIME)' $(FUZZ_TARGETS)

## lint: gofmt, vet, actionlint on .github/workflows (the pinned version; shellcheck on their scripts when installed), and a clean regenerate when clang is present.
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) run github.com/rhysd/actionlint/cmd/actionlint
	@if command -v clang >/dev/null; then $(MAKE) generate && git diff --exit-code -- datapath; fi

## fixtures: regenerate the pcap fixtures and their expectations (fixtures/data) and the bug-report example's capture; git diff stays clean.
.PHONY: fixtures
fixtures:
	$(GO) run ./fixtures/gen
	$(GO) run ./docs/examples/bug-report/gen

# ---- e2e: the life-of-a-packet suites (issue 5) -----------------------------
# `make e2e` boots each topology in QEMU on the default kernel (KERNEL=6.12
# picks another catalogue series, KERNEL=/path/bzImage[,modules-dir] or
# HOPLAB_KERNEL=... a kernel of your own, such as 4.19), runs the Ginkgo suites under e2e/ with
# JUnit and JSON reports, keeps the artifacts of a failed run in the printed
# directory, and prints a summary per suite. E2E_LABELS is a Ginkgo label
# filter (journey, reply, same-node, policy, drops, client, bond, bgp,
# fixture, tunnel, nodeport, host, socket-lb, l7, cross-kernel); E2E_LANES=N
# runs the suites in N Ginkgo processes side by side (default 2, each suite
# its own cluster; 1 runs them one after the other); E2E_VMTEST=1 also runs the harness's own VM tests (vmtest/...).
# `make e2e-matrix` runs the suites on every catalogue series in turn.
E2E_DEPS   = qemu-system-x86 kmod xz-utils zstd ca-certificates
KERNEL    ?=
EXTRA_KERNELS ?=
E2E_LABELS ?=
E2E_VMTEST ?=
E2E_FLAGS  = $(if $(KERNEL),-kernel $(KERNEL)) $(if $(E2E_LABELS),-label-filter '$(E2E_LABELS)')

.PHONY: e2e e2e-matrix deps-e2e e2e-vmtest

deps-e2e:
	@tools/ensure-deps.sh $(E2E_DEPS)

## e2e: the e2e suites on one kernel (KERNEL=series), ≤ 5 minutes under TCG once the kernel is cached.
e2e: deps-e2e
	$(GO) build ./...
	$(if $(E2E_VMTEST),$(MAKE) e2e-vmtest)
	$(GO) run ./e2e/runner $(E2E_FLAGS)

## e2e-vmtest: the VM tests of the harness, node agent, cluster and CLI (QEMU lifecycle, fabric, BGP, replay) on the same kernel.
e2e-vmtest: deps-e2e
	HOPLAB_SERIES=$(KERNEL) $(GO) test -tags vm -count=1 -timeout 30m ./vmtest/... ./tools/...

## e2e-matrix: the e2e suites on every catalogue kernel in turn, plus EXTRA_KERNELS=/path/bzImage[,modules-dir],... (your own images), with a table per kernel.
e2e-matrix: deps-e2e
	$(GO) build ./...
	$(GO) run ./e2e/runner -matrix -extra-kernels '$(EXTRA_KERNELS)' $(if $(E2E_LABELS),-label-filter '$(E2E_LABELS)')

## bench-l7: the L7 proxy's cost in the VMs (topologies/l7.yaml, one boot): requests/s and latency of a GET through node2's proxy vs the same GET without an L7 rule, L7_BENCH (default 10s) each; KERNEL as for e2e (a series, or /path/bzImage[,modules-dir]).
L7_BENCH ?= 10s
.PHONY: bench-l7
bench-l7: deps-e2e
	$(if $(findstring /,$(KERNEL)),HOPLAB_KERNEL=$(KERNEL),$(if $(KERNEL),HOPLAB_SERIES=$(KERNEL))) HOPLAB_L7_BENCH=$(L7_BENCH) \
		$(GO) test -v -tags vm -count=1 -timeout 20m ./e2e/l7 -args -ginkgo.label-filter=bench-l7
# ---- end of e2e --------------------------------------------------------------

# ---- study: eBPF versus iptables (issue 14) ---------------------------------
# `make study` boots the study's two-node topology (KERNEL as for e2e) and
# measures bulk TCP throughput and TCP_RR against the number of policy
# entries (eBPF) and FORWARD rules (a bridge baseline, no matching rule or a
# matching rule on top), single-host and multi-host; it writes
# docs/study.md, docs/study/*.png and docs/study/*.csv. `make study-quick`
# runs the small grid (counts 0, 200 and 10000, 3 repetitions) into
# STUDY_QUICK_OUT.
STUDY_OUT       ?= docs/study
STUDY_DOC       ?= docs/study.md
STUDY_QUICK_OUT ?= $(or $(TMPDIR),/tmp)/hoplab-study-quick
STUDY_FLAGS     ?=

.PHONY: study study-quick

## study: the full grid (counts 0..10000, 5 repetitions), ≤ 30 minutes under TCG on 2 cores; writes docs/study.md and docs/study/.
study: deps-e2e
	$(GO) run ./tools/hoplab study $(if $(KERNEL),--kernel $(KERNEL)) --out $(STUDY_OUT) --doc $(STUDY_DOC) $(STUDY_FLAGS)

## study-quick: the quick grid, ≤ 5 minutes under TCG; report and plots in STUDY_QUICK_OUT.
study-quick: deps-e2e
	$(GO) run ./tools/hoplab study --quick $(if $(KERNEL),--kernel $(KERNEL)) --out $(STUDY_QUICK_OUT) $(STUDY_FLAGS)
# ---- end of study ------------------------------------------------------------
