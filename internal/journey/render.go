package journey

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Field names used by the renderer, Diff and FieldDiff: the JSON names.
const (
	FieldVerdict     = "verdict"
	FieldDropReason  = "drop_reason"
	FieldDeliveredTo = "delivered_to"
	FieldNode        = "node"
	FieldPoint       = "point"
	FieldDevice      = "device"
	FieldEthSrc      = "eth_src"
	FieldEthDst      = "eth_dst"
	FieldIPSrc       = "ip_src"
	FieldIPDst       = "ip_dst"
	FieldTTL         = "ttl"
	FieldProto       = "proto"
	FieldSport       = "sport"
	FieldDport       = "dport"
	FieldTuple       = "tuple"
	FieldFlags       = "flags"
	FieldRevNAT      = "rev_nat"

	// The outer headers of a tunnelled hop (Hop.Outer).
	FieldOuterEthSrc = "outer.eth_src"
	FieldOuterEthDst = "outer.eth_dst"
	FieldOuterIPSrc  = "outer.ip_src"
	FieldOuterIPDst  = "outer.ip_dst"
	FieldOuterTTL    = "outer.ttl"
	FieldOuterProto  = "outer.proto"
	FieldOuterSport  = "outer.sport"
	FieldOuterDport  = "outer.dport"
	FieldOuterVNI    = "outer.vni"

	// The L7 proxy's part of a proxy hop (Hop.L7).
	FieldL7Method = "l7.method"
	FieldL7Path   = "l7.path"
	FieldL7Status = "l7.status"
	FieldL7Rule   = "l7.rule"
)

// hopFields returns a hop's comparable fields by name, in display order.
func hopFields(h Hop) []fieldValue {
	f := []fieldValue{
		{FieldNode, h.Node}, {FieldPoint, string(h.Point)}, {FieldDevice, h.Device},
		{FieldEthSrc, h.EthSrc}, {FieldEthDst, h.EthDst},
		{FieldIPSrc, h.IPSrc}, {FieldIPDst, h.IPDst}, {FieldTTL, num(int(h.TTL))}, {FieldProto, h.Proto},
		{FieldSport, num(int(h.Sport))}, {FieldDport, num(int(h.Dport))},
		{FieldVerdict, string(h.Verdict)}, {FieldDropReason, h.DropReason},
	}
	o := h.Outer
	if o == nil {
		o = &Outer{}
	}
	f = append(f,
		fieldValue{FieldOuterEthSrc, o.EthSrc}, fieldValue{FieldOuterEthDst, o.EthDst},
		fieldValue{FieldOuterIPSrc, o.IPSrc}, fieldValue{FieldOuterIPDst, o.IPDst}, fieldValue{FieldOuterTTL, num(int(o.TTL))},
		fieldValue{FieldOuterProto, o.Proto}, fieldValue{FieldOuterSport, num(int(o.Sport))}, fieldValue{FieldOuterDport, num(int(o.Dport))},
		fieldValue{FieldOuterVNI, num(int(o.VNI))})
	l := h.L7
	if l == nil {
		l = &L7{}
	}
	return append(f, fieldValue{FieldL7Method, l.Method}, fieldValue{FieldL7Path, l.Path},
		fieldValue{FieldL7Status, num(l.Status)}, fieldValue{FieldL7Rule, l.Rule})
}

type fieldValue struct{ name, value string }

// num renders a numeric field, 0 as "" (the wildcard / absent value).
func num(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// Legend is the first line of every rendering, explaining the markers.
const Legend = "(* changed since the previous hop; ! differs from the expectation)"

// Render writes every packet's journey of r as text, one block per hop.
func Render(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "kernel %s\n%s\n", orDash(r.Kernel), Legend)
	for _, p := range r.Packets {
		b.WriteByte('\n')
		renderPacket(&b, p, nil)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// RenderPacket returns one packet's journey as text, one block per hop.
func RenderPacket(p Packet) string {
	var b strings.Builder
	b.WriteString(Legend + "\n")
	renderPacket(&b, p, nil)
	return b.String()
}

// marks are Diff's annotations on a rendered journey.
type marks struct {
	pkt       map[string]string         // packet field → wanted value
	hop       map[int]map[string]string // hop index → field → wanted value
	missing   map[int][]Hop             // expected hops missing before hop i
	extra     map[int]bool              // hops not in the expectation
	ct        map[int]map[string]string // CT index → field → wanted value
	missingCT []CTEntry
}

func (m *marks) hopMarks(i int) map[string]string {
	if m == nil {
		return nil
	}
	return m.hop[i]
}

// val renders one field value with its markers.
func val(name, v string, changed bool, want map[string]string) string {
	s := orDash(v)
	if changed {
		s = "*" + s
	}
	if w, ok := want[name]; ok {
		s = fmt.Sprintf("!%s (want %s)", s, orDash(w))
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func renderPacket(b *strings.Builder, p Packet, m *marks) {
	var pm map[string]string
	if m != nil {
		pm = m.pkt
	}
	fmt.Fprintf(b, "packet %d: %s", p.Index, val(FieldVerdict, string(p.Verdict), false, pm))
	if p.DropReason != "" || pm[FieldDropReason] != "" {
		fmt.Fprintf(b, " (%s)", val(FieldDropReason, p.DropReason, false, pm))
	}
	if p.DeliveredTo != "" || pm[FieldDeliveredTo] != "" {
		fmt.Fprintf(b, " to %s", val(FieldDeliveredTo, p.DeliveredTo, false, pm))
	}
	b.WriteByte('\n')
	var prev *Hop
	for i := range p.Hops {
		if m != nil {
			for _, h := range m.missing[i] {
				renderMissing(b, h)
			}
		}
		extra := m != nil && m.extra[i]
		renderHop(b, i, p.Hops[i], prev, m.hopMarks(i), extra)
		prev = &p.Hops[i]
	}
	if m != nil {
		for _, h := range m.missing[len(p.Hops)] {
			renderMissing(b, h)
		}
	}
	for i, c := range p.CT {
		var cm map[string]string
		if m != nil {
			cm = m.ct[i]
		}
		fmt.Fprintf(b, "  ct %s  %s  flags %s  rev_nat %s\n", orDash(c.Node), val(FieldTuple, c.Tuple, false, cm),
			val(FieldFlags, c.Flags, false, cm), val(FieldRevNAT, c.RevNAT, false, cm))
	}
	if m != nil {
		for _, c := range m.missingCT {
			fmt.Fprintf(b, "  ct !MISSING %s  %s  flags %s  rev_nat %s\n", orDash(c.Node), orDash(c.Tuple), orDash(c.Flags), orDash(c.RevNAT))
		}
	}
}

func renderHop(b *strings.Builder, i int, h Hop, prev *Hop, want map[string]string, extra bool) {
	changed := func(name string) bool {
		if prev == nil {
			return false
		}
		for _, f := range hopFields(*prev) {
			if f.name == name {
				for _, g := range hopFields(h) {
					if g.name == name {
						return f.value != g.value
					}
				}
			}
		}
		return false
	}
	v := func(name, value string) string {
		// Node, point and device change at every hop: never starred.
		c := name != FieldNode && name != FieldPoint && name != FieldDevice && changed(name)
		return val(name, value, c, want)
	}
	tag := ""
	if extra {
		tag = "  !UNEXPECTED"
	}
	fmt.Fprintf(b, "  %02d %s %s %s%s\n", i, v(FieldNode, h.Node), v(FieldPoint, string(h.Point)), v(FieldDevice, h.Device), tag)
	fmt.Fprintf(b, "     eth   %s -> %s\n", v(FieldEthSrc, h.EthSrc), v(FieldEthDst, h.EthDst))
	if h.IPSrc != "" || h.IPDst != "" || want[FieldIPSrc] != "" || want[FieldIPDst] != "" {
		fmt.Fprintf(b, "     ip    %s -> %s  ttl %s  proto %s\n", v(FieldIPSrc, h.IPSrc), v(FieldIPDst, h.IPDst), v(FieldTTL, num(int(h.TTL))), v(FieldProto, h.Proto))
	} else if h.Proto != "" {
		fmt.Fprintf(b, "     proto %s\n", v(FieldProto, h.Proto))
	}
	if h.Sport != 0 || h.Dport != 0 || want[FieldSport] != "" || want[FieldDport] != "" {
		fmt.Fprintf(b, "     %-5s %s -> %s\n", orDash(h.Proto), v(FieldSport, num(int(h.Sport))), v(FieldDport, num(int(h.Dport))))
	}
	if o := h.Outer; o != nil || wantsOuter(want) {
		if o == nil {
			o = &Outer{}
		}
		fmt.Fprintf(b, "     outer eth %s -> %s  ip %s -> %s  ttl %s  %s %s -> %s  vni %s\n",
			v(FieldOuterEthSrc, o.EthSrc), v(FieldOuterEthDst, o.EthDst), v(FieldOuterIPSrc, o.IPSrc), v(FieldOuterIPDst, o.IPDst),
			v(FieldOuterTTL, num(int(o.TTL))), v(FieldOuterProto, o.Proto), v(FieldOuterSport, num(int(o.Sport))),
			v(FieldOuterDport, num(int(o.Dport))), v(FieldOuterVNI, num(int(o.VNI))))
	}
	if l := h.L7; l != nil || wantsL7(want) {
		if l == nil {
			l = &L7{}
		}
		fmt.Fprintf(b, "     l7    %s %s -> %s  rule %s\n", v(FieldL7Method, l.Method), v(FieldL7Path, l.Path),
			v(FieldL7Status, num(l.Status)), v(FieldL7Rule, l.Rule))
	}
	fmt.Fprintf(b, "     %s", v(FieldVerdict, string(h.Verdict)))
	if h.DropReason != "" || want[FieldDropReason] != "" {
		fmt.Fprintf(b, " (%s)", v(FieldDropReason, h.DropReason))
	}
	b.WriteByte('\n')
}

// wantsL7 reports whether an expectation names any l7 field.
func wantsL7(want map[string]string) bool {
	for name := range want {
		if strings.HasPrefix(name, "l7.") {
			return true
		}
	}
	return false
}

// wantsOuter reports whether an expectation names any outer field.
func wantsOuter(want map[string]string) bool {
	for name := range want {
		if strings.HasPrefix(name, "outer.") {
			return true
		}
	}
	return false
}

func renderMissing(b *strings.Builder, h Hop) {
	fmt.Fprintf(b, "  !MISSING %s %s %s\n", orDash(h.Node), orDash(string(h.Point)), orDash(h.Device))
	var parts []string
	for _, f := range hopFields(h)[3:] {
		if f.value != "" {
			parts = append(parts, f.name+"="+f.value)
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, "     want %s\n", strings.Join(parts, " "))
	}
}
