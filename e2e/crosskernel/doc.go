// Package crosskernel holds the e2e suite that replays the fixtures of
// topologies/pod-to-service.yaml on two kernels and requires the same
// journeys on both (label "cross-kernel"): our datapath must do the same
// thing to a packet on every kernel it supports, hop by hop, field by field,
// CT entries included (replayreport.ComparePackets; the outer UDP source
// port of tunnelled hops, a per-boot hash, aside).
//
// The two kernels are the kernel under test — HOPLAB_KERNEL (a user's
// image) or HOPLAB_SERIES, as `make e2e KERNEL=...` sets them, else the
// topology's series — and a reference: HOPLAB_CROSS_KERNEL (a catalogue
// series), else the newest catalogue series, or the oldest when the kernel
// under test is the newest. In a kernel matrix every kernel is so compared
// with the same reference. The clusters boot one after the other.
//
// A spec that finds a difference fails with both journeys side by side (the
// first differing hop marked) and writes kernels-FIXTURE.html, the two paths
// drawn side by side, with both journey reports, into the suite's artifacts
// (HOPLAB_E2E_ARTIFACTS/cross-kernel). The specs need QEMU and carry the
// build tag vm: run them with `make e2e` (E2E_LABELS=cross-kernel for them
// alone).
package crosskernel
