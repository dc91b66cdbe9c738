package journey

import (
	"fmt"
	"strings"
)

// FieldDiff is one difference between an expected and an observed journey.
type FieldDiff struct {
	// Hop is the index of the observed hop (-1 for packet-level fields and
	// CT entries; for a missing hop, the index it was expected before).
	Hop int `json:"hop"`
	// Point is the hop's point ("" for packet-level fields).
	Point Point `json:"point"`
	// Field is the JSON field name, or "hop" for a missing or unexpected
	// hop, or "ct" for a missing CT entry.
	Field string `json:"field"`
	// Want is the expected value.
	Want string `json:"want"`
	// Got is the observed value.
	Got string `json:"got"`
}

// String renders the difference on one line.
func (d FieldDiff) String() string {
	where := "packet"
	if d.Hop >= 0 {
		where = fmt.Sprintf("hop %d (%s)", d.Hop, d.Point)
	}
	return fmt.Sprintf("%s: %s: got %s, want %s", where, d.Field, orDash(d.Got), orDash(d.Want))
}

// Difference is the result of Diff.
type Difference struct {
	// Got is the observed journey.
	Got Packet
	// Diffs lists every difference, in journey order.
	Diffs []FieldDiff

	marks marks
}

// Equal reports whether the observed journey matches the expectation.
func (d Difference) Equal() bool { return len(d.Diffs) == 0 }

// String renders the whole observed journey with every differing field
// marked '!' and its expected value, missing hops and CT entries inserted
// where they were expected, followed by the list of differences.
func (d Difference) String() string {
	var b strings.Builder
	b.WriteString(Legend + "\n")
	renderPacket(&b, d.Got, &d.marks)
	if len(d.Diffs) > 0 {
		fmt.Fprintf(&b, "%d difference(s):\n", len(d.Diffs))
		for _, f := range d.Diffs {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	return b.String()
}

// DiffOption changes how Diff compares.
type DiffOption func(*diffConfig)

type diffConfig struct{ allowExtraHops bool }

// AllowExtraHops lets the observed journey hold hops the expectation does not
// list (the expected hops must still appear, in order).
func AllowExtraHops() DiffOption { return func(c *diffConfig) { c.allowExtraHops = true } }

// Diff compares an expected journey with an observed one. Zero-valued
// fields of want (empty strings, 0) are wildcards. Expected hops are matched
// in order to observed hops with the same point (and node and device, when
// given); expected CT entries must each appear among the observed ones
// (matched by node and tuple). Index is not compared.
func Diff(want, got Packet, opts ...DiffOption) Difference {
	var cfg diffConfig
	for _, o := range opts {
		o(&cfg)
	}
	d := Difference{Got: got, marks: marks{
		pkt: map[string]string{}, hop: map[int]map[string]string{}, missing: map[int][]Hop{},
		extra: map[int]bool{}, ct: map[int]map[string]string{},
	}}
	for _, f := range []fieldValue{{FieldVerdict, string(want.Verdict)}, {FieldDropReason, want.DropReason}, {FieldDeliveredTo, want.DeliveredTo}} {
		g := map[string]string{FieldVerdict: string(got.Verdict), FieldDropReason: got.DropReason, FieldDeliveredTo: got.DeliveredTo}[f.name]
		if f.value != "" && f.value != g {
			d.marks.pkt[f.name] = f.value
			d.Diffs = append(d.Diffs, FieldDiff{Hop: -1, Field: f.name, Want: f.value, Got: g})
		}
	}
	d.diffHops(want.Hops, got.Hops, cfg)
	d.diffCT(want.CT, got.CT)
	return d
}

func (d *Difference) diffHops(want, got []Hop, cfg diffConfig) {
	matched := make([]bool, len(got))
	next := 0
	var diffs []FieldDiff
	for _, w := range want {
		j := -1
		for k := next; k < len(got); k++ {
			if sameHop(w, got[k]) {
				j = k
				break
			}
		}
		if j < 0 {
			d.marks.missing[next] = append(d.marks.missing[next], w)
			diffs = append(diffs, FieldDiff{Hop: next, Point: w.Point, Field: "hop", Want: hopLabel(w), Got: "missing"})
			continue
		}
		matched[j] = true
		next = j + 1
		if fd := CompareHop(w, got[j]); len(fd) > 0 {
			m := map[string]string{}
			for _, f := range fd {
				f.Hop = j
				m[f.Field] = f.Want
				diffs = append(diffs, f)
			}
			d.marks.hop[j] = m
		}
	}
	if !cfg.allowExtraHops {
		for j, ok := range matched {
			if !ok {
				d.marks.extra[j] = true
				diffs = append(diffs, FieldDiff{Hop: j, Point: got[j].Point, Field: "hop", Want: "no such hop", Got: hopLabel(got[j])})
			}
		}
	}
	// Report in journey order.
	for j := 0; j <= len(got); j++ {
		for _, f := range diffs {
			if f.Hop == j {
				d.Diffs = append(d.Diffs, f)
			}
		}
	}
}

func hopLabel(h Hop) string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", h.Node, h.Point, h.Device))
}

// sameHop reports whether observed hop g is where expected hop w belongs.
func sameHop(w, g Hop) bool {
	return w.Point == g.Point && (w.Node == "" || w.Node == g.Node) && (w.Device == "" || w.Device == g.Device)
}

// CompareHop compares one expected hop with one observed hop field by field;
// zero-valued fields of want are wildcards. The returned FieldDiffs have Hop
// set to -1 (Diff fills in the index).
func CompareHop(want, got Hop) []FieldDiff {
	var out []FieldDiff
	gf := hopFields(got)
	for i, w := range hopFields(want) {
		if w.value != "" && w.value != gf[i].value {
			out = append(out, FieldDiff{Hop: -1, Point: got.Point, Field: w.name, Want: w.value, Got: gf[i].value})
		}
	}
	return out
}

func (d *Difference) diffCT(want, got []CTEntry) {
	for _, w := range want {
		j := -1
		for k, g := range got {
			if (w.Node == "" || w.Node == g.Node) && (w.Tuple == "" || w.Tuple == g.Tuple) {
				j = k
				break
			}
		}
		if j < 0 {
			d.marks.missingCT = append(d.marks.missingCT, w)
			d.Diffs = append(d.Diffs, FieldDiff{Hop: -1, Field: "ct", Want: strings.TrimSpace(w.Node + " " + w.Tuple), Got: "missing"})
			continue
		}
		g := got[j]
		for _, f := range []struct{ name, w, g string }{{FieldFlags, w.Flags, g.Flags}, {FieldRevNAT, w.RevNAT, g.RevNAT}} {
			if f.w != "" && f.w != f.g {
				if d.marks.ct[j] == nil {
					d.marks.ct[j] = map[string]string{}
				}
				d.marks.ct[j][f.name] = f.w
				d.Diffs = append(d.Diffs, FieldDiff{Hop: -1, Field: "ct " + f.name, Want: f.w, Got: f.g})
			}
		}
	}
}
