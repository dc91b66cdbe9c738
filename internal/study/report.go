package study

import (
	"fmt"
	"io"
	"math"
	"path"
	"strings"
	"time"
)

// ReportOptions say where the report's plots are, relative to the report.
type ReportOptions struct {
	// PlotDir is the plots' directory as the Markdown links it
	// ("study" for docs/study.md and docs/study/*.png).
	PlotDir string
	// Command is the command line that produced the run.
	Command string
}

// Headline is what the report's closing note repeats, and hoplab study
// prints.
type Headline struct {
	// EBPFAtMax is the eBPF throughput ratio at the largest count, per
	// placement; MaxEntries that count.
	MaxEntries int
	EBPFAtMax  map[Placement]float64
	// NoMatchAt200 is the no-match throughput ratio at 200 rules (NaN
	// when not measured), NoMatchAtMax at the largest count.
	NoMatchAt200 map[Placement]float64
	NoMatchAtMax map[Placement]float64
	// NoMatchSlope is the no-match throughput ratio's least-squares slope
	// over 0..200 rules, per 100 rules.
	NoMatchSlope map[Placement]float64
	// LatencyAt25, LatencyAt200 and LatencyAtMax are the no-match
	// latency ratios; EBPFLatencyAtMax eBPF's at the largest count.
	LatencyAt25, LatencyAt200, LatencyAtMax map[Placement]float64
	EBPFLatencyAtMax                        map[Placement]float64
	// The same for throughput per VM CPU second (NaN without CPU times).
	EBPFPerCPUAtMax, NoMatchPerCPUAt200, NoMatchPerCPUAtMax, NoMatchPerCPUSlope map[Placement]float64
}

// Headlines computes the headline ratios of points.
func Headlines(points []Point) Headline {
	h := Headline{EBPFAtMax: map[Placement]float64{}, NoMatchAt200: map[Placement]float64{}, NoMatchAtMax: map[Placement]float64{},
		NoMatchSlope: map[Placement]float64{}, LatencyAt25: map[Placement]float64{}, LatencyAt200: map[Placement]float64{},
		LatencyAtMax: map[Placement]float64{}, EBPFLatencyAtMax: map[Placement]float64{},
		EBPFPerCPUAtMax: map[Placement]float64{}, NoMatchPerCPUAt200: map[Placement]float64{}, NoMatchPerCPUAtMax: map[Placement]float64{},
		NoMatchPerCPUSlope: map[Placement]float64{}}
	for _, p := range points {
		h.MaxEntries = max(h.MaxEntries, p.Entries)
	}
	ratio := func(m Metric, v Variant, pl Placement, n int) float64 {
		if p, ok := Find(points, m, v, pl, n); ok {
			return p.Ratio
		}
		return math.NaN()
	}
	for _, pl := range Placements {
		h.EBPFAtMax[pl] = ratio(Throughput, EBPF, pl, h.MaxEntries)
		h.EBPFLatencyAtMax[pl] = ratio(Latency, EBPF, pl, h.MaxEntries)
		h.NoMatchAt200[pl] = ratio(Throughput, IPTablesNoMatch, pl, 200)
		h.NoMatchAtMax[pl] = ratio(Throughput, IPTablesNoMatch, pl, h.MaxEntries)
		h.NoMatchSlope[pl] = Slope(points, Throughput, IPTablesNoMatch, pl, 200) * 100
		h.LatencyAt25[pl] = ratio(Latency, IPTablesNoMatch, pl, 25)
		h.LatencyAt200[pl] = ratio(Latency, IPTablesNoMatch, pl, 200)
		h.LatencyAtMax[pl] = ratio(Latency, IPTablesNoMatch, pl, h.MaxEntries)
		h.EBPFPerCPUAtMax[pl] = ratio(ThroughputPerCPU, EBPF, pl, h.MaxEntries)
		h.NoMatchPerCPUAt200[pl] = ratio(ThroughputPerCPU, IPTablesNoMatch, pl, 200)
		h.NoMatchPerCPUAtMax[pl] = ratio(ThroughputPerCPU, IPTablesNoMatch, pl, h.MaxEntries)
		h.NoMatchPerCPUSlope[pl] = Slope(points, ThroughputPerCPU, IPTablesNoMatch, pl, 200) * 100
	}
	return h
}

// pct formats a ratio's change as a signed percentage ("−29 %").
func pct(r float64) string {
	if math.IsNaN(r) {
		return "n/a"
	}
	d := (r - 1) * 100
	sign := "+"
	if d < 0 {
		sign, d = "−", -d
	}
	return fmt.Sprintf("%s%.1f %%", sign, d)
}

// signed formats a percentage with its sign ("−19.5 %").
func signed(p float64) string {
	if math.IsNaN(p) {
		return "n/a"
	}
	return pct(1 + p/100)
}

func ratioText(r float64) string {
	if math.IsNaN(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", r)
}

// Lines are the headline's sentences, one per finding.
func (h Headline) Lines() []string {
	var out []string
	for _, pl := range Placements {
		r := h.EBPFAtMax[pl]
		if math.IsNaN(r) {
			continue
		}
		verdict := "within"
		if math.Abs(r-1) > 0.10 {
			verdict = "outside"
		}
		line := fmt.Sprintf("eBPF throughput at %d entries, %s: %s of its 0-entry value (%s, %s the 10 %% target); latency %s",
			h.MaxEntries, pl, ratioText(r), pct(r), verdict, pct(h.EBPFLatencyAtMax[pl]))
		if c := h.EBPFPerCPUAtMax[pl]; !math.IsNaN(c) {
			verdict = "within"
			if math.Abs(c-1) > 0.10 {
				verdict = "outside"
			}
			line += fmt.Sprintf("; throughput per VM CPU second %s (%s, %s the target)", ratioText(c), pct(c), verdict)
		}
		out = append(out, line+".")
	}
	for _, pl := range Placements {
		if math.IsNaN(h.NoMatchAt200[pl]) && math.IsNaN(h.NoMatchAtMax[pl]) {
			continue
		}
		line := fmt.Sprintf("iptables without a matching rule, %s: throughput %s at 200 rules, %s at %d; slope over 0–200 rules %s per 100 rules",
			pl, pct(h.NoMatchAt200[pl]), pct(h.NoMatchAtMax[pl]), h.MaxEntries, signed(h.NoMatchSlope[pl]*100))
		if !math.IsNaN(h.NoMatchPerCPUAtMax[pl]) {
			line += fmt.Sprintf("; per VM CPU second %s at 200, %s at %d, slope %s per 100 rules",
				pct(h.NoMatchPerCPUAt200[pl]), pct(h.NoMatchPerCPUAtMax[pl]), h.MaxEntries, signed(h.NoMatchPerCPUSlope[pl]*100))
		}
		out = append(out, line+".")
	}
	for _, pl := range Placements {
		if math.IsNaN(h.LatencyAt200[pl]) && math.IsNaN(h.LatencyAtMax[pl]) {
			continue
		}
		out = append(out, fmt.Sprintf("iptables without a matching rule, %s: TCP_RR mean latency %s at 25 rules, %s at 200, %s at %d.",
			pl, pct(h.LatencyAt25[pl]), pct(h.LatencyAt200[pl]), pct(h.LatencyAtMax[pl]), h.MaxEntries))
	}
	return out
}

// WriteReport writes docs/study.md: how the study was run, the headline
// ratios, per metric its plot and a table per placement, a comparison with
// the seed's figures, and how to reproduce it.
func WriteReport(w io.Writer, res *Result, points []Point, o ReportOptions) error {
	var b strings.Builder
	h := Headlines(points)
	g := res.Grid
	fmt.Fprintf(&b, `# eBPF versus iptables, the UvA study reproduced in hoplab's VMs

This page is written by `+"`hoplab study`"+` (`+"`make study`"+`); the numbers below are from
the run described here. It reproduces N. de Bruijn's "eBPF Based Networking"
(University of Amsterdam, SNE research project, 2017) — the seed of hoplab's
performance work — in QEMU VMs: TCP throughput and TCP request/response
latency between two pods, single-host and multi-host, for eBPF policy
enforcement (hoplab's datapath) and for a Linux bridge with iptables rules,
as the number of policy entries or rules grows.

**Numbers are relative.** The VMs run under %s on a %d-core machine:
absolute throughput and latency say nothing about real hardware (a bulk
stream between the VMs moves tens of Mbit/s). Every value is therefore
also given as a ratio to the same variant and placement at 0 entries, and
the shapes of those ratios are what compare with the study.

## The run

| | |
|---|---|
| command | %s |
| kernel | %s (%s) |
| grid | %s |
| repetitions | %d per point, each a bulk test and a TCP_RR test of %v |
| wall time | %v (boot %v; eBPF phase %v; baseline phase %v) |
| host load (1, 5, 15 min) | before %s, after %s |

`, strings.ToUpper(res.Accel), res.CPUs, "`"+o.Command+"`", res.Kernel, res.Accel, gridText(g), g.Reps, g.Duration,
		res.Wall.Round(time.Second), res.Boot.Round(time.Second), res.Phases[string(EBPF)].Round(time.Second),
		res.Phases["baseline"].Round(time.Second), res.LoadBefore, res.LoadAfter)

	b.WriteString(methodText)

	b.WriteString("\n## Headline\n\n")
	for _, l := range h.Lines() {
		fmt.Fprintf(&b, "- %s\n", l)
	}

	for _, m := range Metrics {
		if !hasMetric(points, m) {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n", m.Title())
		fmt.Fprintf(&b, "![%s](%s)\n\n", m.Title(), path.Join(o.PlotDir, PlotFile(m)))
		for _, pl := range Placements {
			writeTable(&b, points, m, pl, g)
		}
	}

	b.WriteString("\n## Compared with the study's figures\n\n")
	b.WriteString(comparison(points, h))

	fmt.Fprintf(&b, `
## Reproducing

    make study          # the full grid (this page, docs/study/*.png and *.csv), ≤ 30 minutes under TCG on 2 cores
    make study-quick    # counts 0, 200 and 10,000, 3 repetitions: ≤ 5 minutes
    hoplab study --kernel 6.12 --counts 0,10,100 --reps 5 --duration 2s --out /tmp/study

`+"`hoplab study --from-csv docs/study/samples.csv`"+` redraws the plots and this page from
the samples without booting anything. The raw samples are in
[samples.csv](%s), the medians, spreads and ratios in [points.csv](%s).
`, path.Join(o.PlotDir, "samples.csv"), path.Join(o.PlotDir, "points.csv"))

	b.WriteString("\n## Closing note\n\n")
	for _, l := range h.Lines() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func gridText(g Grid) string {
	var vs []string
	for _, v := range g.Variants {
		vs = append(vs, string(v))
	}
	var cs []string
	for _, c := range g.Counts {
		cs = append(cs, fmt.Sprint(c))
	}
	var ps []string
	for _, p := range g.Placements {
		ps = append(ps, string(p))
	}
	return fmt.Sprintf("%s × entries %s × %s", strings.Join(vs, ", "), strings.Join(cs, ", "), strings.Join(ps, ", "))
}

// writeTable writes one placement's table of m: a row per count, a column
// per variant with the ratio, its spread and the absolute median.
func writeTable(b *strings.Builder, points []Point, m Metric, pl Placement, g Grid) {
	fmt.Fprintf(b, "%s — ratio to 0 entries, median of the repetitions (min–max), absolute median in %s:\n\n", pl, m.Unit())
	b.WriteString("| entries |")
	var vs []Variant
	for _, v := range Variants {
		for _, gv := range g.Variants {
			if gv == v {
				vs = append(vs, v)
			}
		}
	}
	for _, v := range vs {
		fmt.Fprintf(b, " %s |", v.Label())
	}
	b.WriteString("\n|---:|")
	for range vs {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, n := range g.Counts {
		fmt.Fprintf(b, "| %d |", n)
		for _, v := range vs {
			p, ok := Find(points, m, v, pl, n)
			if !ok {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(b, " %s (%s–%s) · %s |", ratioText(p.Ratio), ratioText(p.RatioMin), ratioText(p.RatioMax), absText(p.Median))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func absText(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// comparison is the paragraph that sets the run's shapes beside the
// study's: eBPF flat, iptables without a matching rule losing 29 % of its
// throughput at 200 rules single-host, latency rising past 25 rules.
func comparison(points []Point, h Headline) string {
	var b strings.Builder
	for _, pl := range Placements {
		if _, ok := Find(points, Throughput, EBPF, pl, 0); !ok {
			continue
		}
		f := flatness(points, EBPF, pl, h.MaxEntries)
		fmt.Fprintf(&b, "**eBPF, %s:** %s", pl, f.text("entries"))
		if math.Abs(f.worst) <= 0.10 {
			b.WriteString(" Flat, as in the study: the policy map is a hash, one lookup per packet whatever its size.")
		} else if f.overlaps && math.Abs(f.slope) < 5 {
			b.WriteString(" Flat within the noise, as in the study: the policy map is a hash, one lookup per packet whatever its size.")
		}
		if c, ok := Find(points, ThroughputPerCPU, EBPF, pl, h.MaxEntries); ok {
			fmt.Fprintf(&b, " Per VM CPU second, throughput at %d entries is %s of the 0-entry value.", h.MaxEntries, ratioText(c.Ratio))
		}
		b.WriteString("\n\n")
	}
	for _, pl := range Placements {
		r200 := h.NoMatchAt200[pl]
		if math.IsNaN(r200) {
			continue
		}
		loss := (1 - r200) * 100
		seed := ""
		if pl == SingleHost {
			seed = fmt.Sprintf(" The study measured a 29 %% loss at 200 rules single-host; here it is %.1f %%", loss)
			switch {
			case loss < 5:
				seed += ": under TCG the rest of each packet's path (the emulated CPU running the whole stack) is slow enough that 200 rule evaluations hardly show."
			case loss < 20:
				seed += ": the same direction, a smaller share; under TCG the rest of each packet's path is slower too."
			default:
				seed += ": the same shape and a comparable size (a coincidence of proportions as much as a reproduction: the emulated CPU slows the rules and the rest of the path alike)."
			}
		}
		fmt.Fprintf(&b, "**iptables without a matching rule, %s:** throughput %s at 200 rules and %s at %d (least-squares slope over 0–200: %s per 100 rules): every packet of the flow, both directions, walks the whole chain (a forward packet compares four fields per rule, a reply fails on the first).%s\n\n",
			pl, pct(r200), pct(h.NoMatchAtMax[pl]), h.MaxEntries, signed(h.NoMatchSlope[pl]*100), seed)
	}
	for _, pl := range Placements {
		if _, ok := Find(points, Throughput, IPTablesMatch, pl, 0); !ok {
			continue
		}
		f := flatness(points, IPTablesMatch, pl, h.MaxEntries)
		fmt.Fprintf(&b, "**iptables with the matching rule on top, %s:** %s", pl, f.text("rules"))
		if math.Abs(f.worst) <= 0.10 || f.overlaps && math.Abs(f.slope) < 5 {
			b.WriteString(" The rules below the first are never reached: flat, as in the study; the cost is the rules a packet traverses, not the rules installed.")
		}
		b.WriteString("\n\n")
	}
	for _, pl := range Placements {
		l25, l200 := h.LatencyAt25[pl], h.LatencyAt200[pl]
		if math.IsNaN(l200) {
			continue
		}
		verdict := "rises past 25 rules, as in the study"
		if l200 <= l25*1.02 {
			verdict = "does not clearly rise past 25 rules here"
		}
		fmt.Fprintf(&b, "**Latency, %s:** TCP_RR mean latency without a matching rule %s: %s at 25 rules, %s at 200, %s at %d; eBPF's is %s at %d entries.\n\n",
			pl, verdict, pct(l25), pct(l200), pct(h.LatencyAtMax[pl]), h.MaxEntries, pct(h.EBPFLatencyAtMax[pl]), h.MaxEntries)
	}
	return b.String()
}

// methodText describes what is measured and why it is built this way.
const methodText = `## What is measured, and how

**Topology.** A client pod and a server pod on node1 (single-host), a
second server pod on node2 (multi-host: node1 → bond0 → ToR → bond0 →
node2, direct routing with BGP), the fabric of every hoplab topology
(` + "`internal/study`" + ` generates it; the servers listen on TCP 5201).

**Workload.** A Go implementation in ` + "`vmtest/agent/workload`" + ` (perf.go), not the
Debian tools: the guests have no shell and no package manager, and a Go
client and server run inside the pods' namespaces from the agent. The
semantics are those of the tools: *bulk* is iperf3's test with ` + "`-w 4M`" + `
(one TCP connection, 128 KiB writes for a fixed time, the sender's send
buffer and the receiver's receive buffer fixed at 4 MiB; the receiver's
bytes over the receiver's time from first byte to end of stream: with
the kernel's buffer autotuning, a single-host stream under TCG settled
at either about 1.5 or about 5.5 Gbit/s depending on its first round
trips, which made the medians flip between the two), *TCP_RR* is netperf's
(one connection, one transaction in flight, a 100-byte request answered
by a 200-byte response, for a fixed time; transactions per second and the
mean time from request to complete response, which with one transaction
in flight is netperf's mean latency, 1/tps). Each point first runs a short
unrecorded TCP_RR, then the repetitions, each a bulk test and a TCP_RR
test; the tables give the median and the spread (min–max). Repetitions
are sweeps over the counts, up and down in turn, so that the host's load,
which changes over a long run on a shared machine, weighs on every count
alike.

**CPU-normalised metrics.** Under TCG a VM's throughput is bounded by the
host CPU it gets, and on a shared 2-core machine that share changes from
one second to the next. So every test also records the host CPU time of
the QEMU processes carrying the flow (node1 single-host; node1, the ToR
and node2 multi-host: /proc/PID/stat of each, all threads), and two more
metrics divide by it: bulk throughput per VM CPU second and VM CPU time
per TCP_RR transaction. They measure what the path costs to emulate
rather than how fast the emulation happened to run: on a busy host they
take away the share of CPU the VMs got, but not every effect of the
neighbours (caches, memory bandwidth), so they are not much steadier;
their shapes are read the same way.

**eBPF variant.** hoplab's datapath (from-container on the client's lxc,
to-container tail-called for the server) with N policy entries for the
destination endpoint. The entries come from the topology: one ingress
rule from the client's labels to N TCP ports (5201 and N−1 others), so
the server's policy map holds N L3L4 entries {client identity, port,
TCP}, one of which admits the traffic; N = 0 means no policy and no
enforcement. The topology is applied with a cluster update, as a user's
change would be.

**Baseline.** The same pods, in the same VMs on the same kernel, with
every node switched to a Linux bridge (` + "`cbr0`" + `, kubenet's name) holding the
pods' gateway address: no BPF program is attached anywhere, same-node
traffic is bridged, other traffic routed, the PodCIDRs still announced
over BGP. br_netfilter hands bridged IPv4 to netfilter's FORWARD hook, as
on a Docker or kubenet host, so every packet, same-node or not, meets
the FORWARD chain of the node where the destination pod lives (the other
node's chain is empty). The rules are N iptables-style rules
` + "`-s CLIENT/32 -d SERVER/32 -p tcp --dport P -j ACCEPT`" + ` for ports P other
than 5201 — the eBPF variant's entries, one by one — in two variants:
*no matching rule* (every packet traverses all N before the chain's
accept policy) and *matching rule on top* (a first rule
` + "`-s 10.1.0.0/16 -d 10.1.0.0/16 -j ACCEPT`" + ` takes both directions of the flow,
then N−1 rules it never reaches). N = 0 is the empty chain, which still
hooks forward. No rule uses connection tracking, so nf_conntrack stays
unloaded in both variants.

**Why github.com/google/nftables.** The rules are installed with
github.com/google/nftables (netlink, no binary), not
github.com/coreos/go-iptables, which runs the iptables binary: the guests
have no shell and no iptables. The agent creates exactly what
` + "`iptables-nft -A FORWARD ...`" + ` creates — table ` + "`ip filter`" + `, base chain
` + "`FORWARD`" + ` (hook forward, priority filter, policy accept) — and each rule as
the expressions iptables-nft emits for it (payload loads and comparisons
of the source and destination address, the layer-4 protocol and the
destination port, then the accept verdict; the per-rule counter that
iptables-nft adds runs only when a rule matched and is left out). These
are the rules today's iptables installs on Debian and most distributions
(iptables-nft is the default); the study used iptables-legacy, whose
rule traversal is likewise linear.
`

// flat describes how a variant's throughput moves with the count.
type flat struct {
	// worst is the largest deviation of a median ratio from 1, at entries.
	worst float64
	at    int
	// overlaps: the min–max range of every count overlaps that of 0.
	overlaps bool
	// slope is the least-squares trend, % per 1,000 entries.
	slope float64
}

func flatness(points []Point, v Variant, pl Placement, maxEntries int) flat {
	f := flat{overlaps: true, slope: Slope(points, Throughput, v, pl, maxEntries) * 1000 * 100}
	base, _ := Find(points, Throughput, v, pl, 0)
	for _, p := range points {
		if p.Metric != Throughput || p.Variant != v || p.Placement != pl || math.IsNaN(p.Ratio) {
			continue
		}
		if math.Abs(p.Ratio-1) > math.Abs(f.worst) {
			f.worst, f.at = p.Ratio-1, p.Entries
		}
		if p.RatioMax < base.RatioMin || p.RatioMin > base.RatioMax {
			f.overlaps = false
		}
	}
	return f
}

// text says it in a sentence or two; unit is "entries" or "rules".
func (f flat) text(unit string) string {
	zero := "0-" + map[string]string{"entries": "entry", "rules": "rule"}[unit]
	s := fmt.Sprintf("the median throughput stays within %.1f %% of the %s value at every count (largest deviation at %d %s); the least-squares trend over all counts is %s per 1,000 %s.",
		math.Abs(f.worst)*100, zero, f.at, unit, signed(f.slope), unit)
	switch {
	case math.Abs(f.worst) <= 0.10:
	case f.overlaps:
		s += fmt.Sprintf(" Every count's min–max range overlaps the %s range: the deviations are the shared host's noise (see the spreads in the tables), not a cost of the %s.", zero, unit)
	default:
		s += fmt.Sprintf(" Some count's range lies wholly apart from the %s range: read the tables and the CPU-normalised metric before taking it for a cost of the %s.", zero, unit)
	}
	return s
}
