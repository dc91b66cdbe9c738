package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hoplab/hoplab/internal/journey"
)

// kernelReport is one kernel's replay of the capture.
type kernelReport struct {
	Kernel string         `json:"kernel"`
	Report journey.Report `json:"report"`
}

// kernelDiff is how one packet's journey on a kernel differs from its
// journey on the first kernel.
type kernelDiff struct {
	Index  int                 `json:"index"`
	Kernel string              `json:"kernel"`
	Diffs  []journey.FieldDiff `json:"differences"`
}

// kernelsResult is replay --kernels --json's output.
type kernelsResult struct {
	Kernels     []kernelReport `json:"kernels"`
	Equal       bool           `json:"equal"`
	Differences []kernelDiff   `json:"differences"`
}

// errJourneysDiffer is replay --diff's error when a kernel's journeys are
// not the first kernel's.
var errJourneysDiffer = errors.New("the journeys differ between kernels")

// replayKernels replays the planned capture on each kernel in turn (one
// cluster at a time) and compares every kernel's journeys with the first
// kernel's, packet by packet: the same hops with the same fields, verdicts,
// drop reasons and CT entries.
func (a *app) replayKernels(ctx context.Context, f replayFlags, list []string) error {
	if f.out != "" {
		return errors.New("replay: --out takes one kernel, not --kernels")
	}
	p, err := a.planReplay(f)
	if err != nil {
		return err
	}
	log := a.logger()
	for _, n := range p.notes {
		log.Info(n)
	}
	var res kernelsResult
	for _, k := range list {
		log.Info("replaying", "kernel", k)
		rep, err := a.replayOn(ctx, f, p, k)
		if err != nil {
			return fmt.Errorf("kernel %s: %w", k, err)
		}
		res.Kernels = append(res.Kernels, kernelReport{Kernel: k, Report: rep})
	}
	res.Differences = diffKernels(res.Kernels)
	res.Equal = len(res.Differences) == 0
	if f.json {
		if err := writeJSON(a.stdout, res); err != nil {
			return err
		}
	} else if err := writeKernelsText(a.stdout, res); err != nil {
		return err
	}
	if !res.Equal {
		return fmt.Errorf("replay: %w: %d packet journey(s) differ from %s's", errJourneysDiffer, len(res.Differences), list[0])
	}
	return nil
}

// diffKernels compares every kernel's journeys with the first kernel's.
// The outer UDP source port of tunnelled hops is left out: the kernel
// picks it from the flow's hash, whose seed is random at every boot.
func diffKernels(runs []kernelReport) []kernelDiff {
	out := []kernelDiff{}
	if len(runs) == 0 {
		return out
	}
	base := runs[0].Report.Packets
	for _, r := range runs[1:] {
		for i, p := range r.Report.Packets {
			var want journey.Packet
			if i < len(base) {
				want = withoutOuterSport(base[i])
			}
			if d := journey.Diff(want, withoutOuterSport(p)); !d.Equal() {
				out = append(out, kernelDiff{Index: p.Index, Kernel: r.Kernel, Diffs: d.Diffs})
			}
		}
		if len(r.Report.Packets) != len(base) {
			out = append(out, kernelDiff{Index: -1, Kernel: r.Kernel, Diffs: []journey.FieldDiff{{Hop: -1, Field: "packets",
				Want: fmt.Sprint(len(base)), Got: fmt.Sprint(len(r.Report.Packets))}}})
		}
	}
	return out
}

// writeKernelsText prints, per kernel, its release and whether every
// journey matched the first kernel's, then each differing journey
// rendered with its differences marked.
func writeKernelsText(w io.Writer, res kernelsResult) error {
	first := res.Kernels[0]
	for _, k := range res.Kernels {
		fmt.Fprintf(w, "kernel %s: %s, %d packet(s)\n", k.Kernel, k.Report.Kernel, len(k.Report.Packets))
	}
	if res.Equal {
		_, err := fmt.Fprintf(w, "every journey is the same on every kernel as on %s\n", first.Kernel)
		return err
	}
	for _, d := range res.Differences {
		fmt.Fprintf(w, "\npacket %d on %s differs from %s:\n", d.Index, d.Kernel, first.Kernel)
		for _, f := range d.Diffs {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	return nil
}

// withoutOuterSport returns p with its hops' outer source ports cleared
// (a copy: p's hops are left alone).
func withoutOuterSport(p journey.Packet) journey.Packet {
	hops := make([]journey.Hop, len(p.Hops))
	for i, h := range p.Hops {
		if h.Outer != nil {
			o := *h.Outer
			o.Sport = 0
			h.Outer = &o
		}
		hops[i] = h
	}
	p.Hops = hops
	return p
}
