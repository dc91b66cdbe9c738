package datapath

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Running a program on a packet and checking the invariants on the result.

// exec runs prog once on in; the output aliases f.outBuf.
func (f *fuzzer) exec(prog *ebpf.Program, in []byte, cb *[5]uint32) (uint32, []byte, error) {
	opts := ebpf.RunOptions{Data: in, DataOut: f.outBuf[:len(in)+256], Repeat: 1}
	if cb != nil {
		opts.Context = skbContext{CB: *cb}
	}
	ret, err := prog.Run(&opts)
	return ret, opts.DataOut, err
}

// refused reports whether BPF_PROG_TEST_RUN rejects a frame this short
// (shorter than Ethernet, or than the network header its EtherType names)
// before running the program.
func refused(in []byte, err error) bool {
	if !errors.Is(err, unix.EINVAL) {
		return false
	}
	if len(in) < 14 {
		return true
	}
	switch be16At(in, 12) {
	case 0x0800:
		return len(in) < 14+20
	case 0x86dd:
		return len(in) < 14+40
	}
	return false
}

func (f *fuzzer) runOne(p fzProg, in []byte, v fzView, cb *[5]uint32) {
	ret, out, err := f.exec(p.prog, in, cb)
	if err != nil {
		if refused(in, err) {
			f.st.refused++
			return
		}
		f.t.Fatalf("%s: run on %x: %v", p.name, in, err)
	}
	f.st.runs++
	vs := f.st.verdicts[p.name]
	if vs == nil {
		vs = map[uint32]int{}
		f.st.verdicts[p.name] = vs
	}
	vs[ret]++
	f.prev, f.cur = f.cur, f.prev
	must(f.t, f.cur.dump())
	f.st.ctMax = max(f.st.ctMax, f.cur.n)
	for _, fd := range f.check(p, in, v, cb, ret, out, true) {
		f.violate(fd, p, in, out, cb, ret)
	}
	if ret == tcActRedirect || (ret == tcActOK && p.name != "hoplab_to_netdev" && p.name != "hoplab_from_netdev") {
		f.remember(out)
	}
	if ret != tcActShot && v.valid && len(out) == len(in) {
		f.countRewrites(v, in, out)
	}
}

// countRewrites counts what the datapath changed in a forwarded packet.
func (f *fuzzer) countRewrites(v fzView, in, out []byte) {
	for _, c := range []struct {
		name     string
		from, to int
	}{{"MACs", 0, 12}, {"TTL", 22, 23}, {"source address", 26, 30}, {"destination address", 30, 34}} {
		if !bytes.Equal(in[c.from:c.to], out[c.from:c.to]) {
			f.st.rewrites[c.name]++
		}
	}
	if v.l4ok && v.l4off+4 <= v.end {
		if !bytes.Equal(in[v.l4off:v.l4off+2], out[v.l4off:v.l4off+2]) {
			f.st.rewrites["source port"]++
		}
		if !bytes.Equal(in[v.l4off+2:v.l4off+4], out[v.l4off+2:v.l4off+4]) {
			f.st.rewrites["destination port"]++
		}
	}
}

// rewritable reports whether the datapath may change byte off of a valid
// frame: MACs, TTL and header checksum always; addresses, ports and the
// L4 checksum only when NAT can apply (TCP or UDP with a whole header).
func rewritable(v fzView, off int) bool {
	nat := v.l4ok && (v.proto == uint8(ProtoTCP) || v.proto == uint8(ProtoUDP))
	switch {
	case off < 12, off == 22, off == 24, off == 25:
		return true
	case off >= 26 && off < 34:
		return nat
	}
	if !nat {
		return false
	}
	rel := off - v.l4off
	switch {
	case rel >= 0 && rel < 4:
		return true
	case v.proto == uint8(ProtoTCP):
		return rel == 16 || rel == 17
	default:
		return rel == 6 || rel == 7
	}
}

// check returns the invariants one run broke. It reads the CT snapshots
// f.prev (before the run) and f.cur (after). count adds the checks to the
// statistics.
func (f *fuzzer) check(p fzProg, in []byte, v fzView, cb *[5]uint32, ret uint32, out []byte, count bool) []fzFinding {
	var fs []fzFinding
	add := func(inv int, class, format string, args ...any) {
		fs = append(fs, fzFinding{inv, class, fmt.Sprintf(format, args...)})
	}
	if ret != tcActOK && ret != tcActShot && ret != tcActRedirect {
		add(1, "unexpected verdict", "verdict %d", ret)
	}

	// (3) Length, padding, rewritable fields.
	changed := !bytes.Equal(in, out)
	switch {
	case len(out) != len(in):
		add(3, "frame length changed", "%d -> %d bytes", len(in), len(out))
		changed = false
	case !changed:
	case !v.valid:
		i := fzFirstDiff(in, out)
		add(3, "frame that is not valid IPv4 changed", "byte %d: %#02x -> %#02x", i, in[i], out[i])
	default:
		if i := v.end + fzFirstDiff(in[v.end:], out[v.end:]); i < len(in) {
			add(3, "byte past the IP total length changed", "byte %d (datagram ends at %d): %#02x -> %#02x", i, v.end, in[i], out[i])
		}
		for i := range v.end {
			if in[i] != out[i] && !rewritable(v, i) {
				add(3, "byte outside the rewritable fields changed", "byte %d (L4 at %d, proto %d, L4 header ok %v): %#02x -> %#02x",
					i, v.l4off, v.proto, v.l4ok, in[i], out[i])
				break
			}
		}
	}
	if count && v.valid && v.end < len(in) {
		f.st.trailers++
	}

	// (2) Checksums of rewritten packets that had right ones.
	if changed && v.valid {
		if v.ipCsumOK(in) {
			if count {
				f.st.ipCsum++
			}
			if !v.ipCsumOK(out) {
				add(2, "IPv4 header checksum wrong after rewrite", "header %x", out[14:14+v.ihl])
			}
		}
		name := Proto(v.proto).String()
		inHas, inOK := v.l4Csum(in)
		outHas, outOK := v.l4Csum(out)
		switch {
		case inHas && inOK:
			if count {
				f.st.l4Csum++
			}
			if !outHas || !outOK {
				add(2, name+" checksum wrong after rewrite", "L4 %x", out[v.l4off:min(v.end, v.l4off+20)])
			}
		case v.l4ok && v.proto == uint8(ProtoUDP) && !inHas && outHas && !outOK:
			add(2, "UDP checksum set wrong on a packet without one", "L4 %x", out[v.l4off:v.l4off+8])
		}
	}

	// (4) A drop does not grow CT.
	if ret == tcActShot {
		if count {
			f.st.dropsCT++
		}
		if f.cur.n > f.prev.n {
			added := f.cur.added(f.prev)
			var kinds, entries []string
			for _, e := range added {
				kinds = append(kinds, e.Key.Flags.String())
				entries = append(entries, e.String())
			}
			sort.Strings(kinds)
			kinds = slices.Compact(kinds)
			class := fmt.Sprintf("dropped packet left CT entries [%s]", strings.Join(kinds, " "))
			add(4, class, "%d -> %d entries; new: %s", f.prev.n, f.cur.n, strings.Join(entries, "; "))
		}
	}
	if count && f.cur.n < f.prev.n {
		if ret == tcActShot {
			f.st.ctDropShrunk++
		} else {
			f.st.ctShrunk++
		}
	}

	// (1) Nothing the model denies is forwarded.
	if ret != tcActShot && p.allowed != nil {
		if count {
			f.st.forwardsModelled++
		}
		if ok, class, detail := p.allowed(f, v, out, cb); !ok {
			add(1, class, "%s", detail)
		}
	}
	return fs
}

func fzFirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func (f *fuzzer) violate(fd fzFinding, p fzProg, in, out []byte, cb *[5]uint32, ret uint32) {
	key := fmt.Sprintf("%d|%s|%s", fd.inv, p.name, fd.class)
	vl := f.violations[key]
	if vl == nil {
		vl = &fzViolation{fzFinding: fd, prog: p}
		f.violations[key] = vl
		f.t.Logf("first seen: invariant %d broken by %s: %s: %s\n in: %x\nout: %x", fd.inv, p.name, fd.class, fd.detail, in, out)
	}
	vl.count++
	if vl.in == nil || len(in) < len(vl.in) {
		vl.detail, vl.ret, vl.cb = fd.detail, ret, cb
		vl.in, vl.out = append([]byte(nil), in...), append([]byte(nil), out...)
	}
}

// remember keeps the flow of a forwarded packet to continue, answer or
// quote later.
func (f *fuzzer) remember(out []byte) {
	ov := fzParse(out)
	if !ov.valid || !ov.l4ok || ov.related != nil || (ov.proto == uint8(ProtoICMP) && ov.icmpType != 8 && ov.icmpType != 0) {
		return
	}
	f.ring = append(f.ring, ov.tuple(TupleOut))
	if len(f.ring) > 256 {
		f.ring = append(f.ring[:0], f.ring[len(f.ring)-64:]...)
	}
}

// recent picks a flow forwarded lately, mostly one of the last few (whose
// CT entries are likely still there).
func (f *fuzzer) recent() CTKey {
	n := len(f.ring)
	if f.r.IntN(4) != 0 {
		return f.ring[n-1-f.r.IntN(min(n, 8))]
	}
	return f.ring[n-1-f.r.IntN(min(n, 64))]
}
