package study

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Variant is one way of enforcing the destination's policy.
type Variant string

// The study's variants.
const (
	// EBPF is the hoplab datapath: N L3L4 entries in the destination
	// endpoint's policy map.
	EBPF Variant = "ebpf"
	// IPTablesNoMatch is the bridge baseline with N FORWARD rules, none of
	// which matches the measured traffic.
	IPTablesNoMatch Variant = "iptables-no-match"
	// IPTablesMatch is the bridge baseline with a rule accepting the
	// measured traffic at the top of the chain, then N-1 others.
	IPTablesMatch Variant = "iptables-match"
)

// Variants lists the variants in the report's order.
var Variants = []Variant{EBPF, IPTablesNoMatch, IPTablesMatch}

// Label is the variant's name in tables and legends.
func (v Variant) Label() string {
	switch v {
	case EBPF:
		return "eBPF (hoplab)"
	case IPTablesNoMatch:
		return "iptables, no matching rule"
	case IPTablesMatch:
		return "iptables, matching rule on top"
	}
	return string(v)
}

// Placement says where the two pods run.
type Placement string

// The study's placements.
const (
	// SingleHost: client and server on node1.
	SingleHost Placement = "single-host"
	// MultiHost: client on node1, server on node2, through bond0 and the
	// ToR.
	MultiHost Placement = "multi-host"
)

// Placements lists the placements in the report's order.
var Placements = []Placement{SingleHost, MultiHost}

// Grid is what one study measures: every variant × count × placement,
// Reps times each of a bulk and a TCP_RR test of Duration.
type Grid struct {
	Variants   []Variant
	Counts     []int
	Placements []Placement
	Reps       int
	Duration   time.Duration
}

// FullCounts are the entry counts of the full grid: the study's 0..200 and
// then 1,000 and 10,000.
var FullCounts = []int{0, 1, 5, 10, 25, 50, 100, 200, 1000, 10000}

// FullGrid is `make study`'s grid: ≤ 30 minutes under TCG on 2 cores.
func FullGrid() Grid {
	return Grid{Variants: Variants, Counts: FullCounts, Placements: Placements, Reps: 5, Duration: time.Second}
}

// QuickGrid is `make study-quick`'s grid: ≤ 5 minutes under TCG.
func QuickGrid() Grid {
	return Grid{Variants: Variants, Counts: []int{0, 200, 10000}, Placements: Placements, Reps: 3, Duration: time.Second}
}

// MaxEntries bounds a grid's counts (the baseline's rules use ports
// 20000..65535).
const MaxEntries = 40000

// Validate checks the grid: known variants and placements, counts in
// 0..MaxEntries starting with 0 (the ratios' base), at least one
// repetition, a positive duration.
func (g Grid) Validate() error {
	var errs []error
	if len(g.Variants) == 0 {
		errs = append(errs, errors.New("no variant"))
	}
	for _, v := range g.Variants {
		if !slices.Contains(Variants, v) {
			errs = append(errs, fmt.Errorf("unknown variant %q (want %s)", v, joinVariants(Variants)))
		}
	}
	if len(g.Placements) == 0 {
		errs = append(errs, errors.New("no placement"))
	}
	for _, p := range g.Placements {
		if !slices.Contains(Placements, p) {
			errs = append(errs, fmt.Errorf("unknown placement %q (want single-host or multi-host)", p))
		}
	}
	if len(g.Counts) == 0 || g.Counts[0] != 0 {
		errs = append(errs, errors.New("counts must start with 0, the base of the ratios"))
	}
	for i, n := range g.Counts {
		if n < 0 || n > MaxEntries {
			errs = append(errs, fmt.Errorf("count %d outside 0..%d", n, MaxEntries))
		}
		if i > 0 && n <= g.Counts[i-1] {
			errs = append(errs, fmt.Errorf("counts must increase (%d after %d)", n, g.Counts[i-1]))
		}
	}
	if g.Reps < 1 {
		errs = append(errs, fmt.Errorf("repetitions %d: want at least 1", g.Reps))
	}
	if g.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %v: want more than 0", g.Duration))
	}
	return errors.Join(errs...)
}

// Measurements is how many perf tests the grid runs (a bulk and a TCP_RR
// test per repetition).
func (g Grid) Measurements() int {
	return len(g.Variants) * len(g.Counts) * len(g.Placements) * g.Reps * 2
}

// ParseCounts parses "0,1,5,10".
func ParseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("count %q: not a number", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no count")
	}
	return out, nil
}

// ParseVariants parses "ebpf,iptables-no-match".
func ParseVariants(s string) ([]Variant, error) {
	var out []Variant
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, Variant(f))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no variant")
	}
	return out, nil
}

func joinVariants(vs []Variant) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// GridOf is the grid samples cover: their variants, counts and
// placements in report order, the most repetitions of a point, and the
// longest test.
func GridOf(samples []Sample) Grid {
	var g Grid
	for _, s := range samples {
		if !slices.Contains(g.Variants, s.Variant) {
			g.Variants = append(g.Variants, s.Variant)
		}
		if !slices.Contains(g.Counts, s.Entries) {
			g.Counts = append(g.Counts, s.Entries)
		}
		if !slices.Contains(g.Placements, s.Placement) {
			g.Placements = append(g.Placements, s.Placement)
		}
		g.Reps = max(g.Reps, s.Rep+1)
		g.Duration = max(g.Duration, s.Duration.Round(100*time.Millisecond))
	}
	slices.SortFunc(g.Variants, func(a, b Variant) int { return orderOf(Variants, a) - orderOf(Variants, b) })
	slices.SortFunc(g.Placements, func(a, b Placement) int { return orderOf(Placements, a) - orderOf(Placements, b) })
	slices.Sort(g.Counts)
	return g
}
