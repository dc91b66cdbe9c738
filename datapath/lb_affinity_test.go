package datapath

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// backendOf returns the backend a from-container output was DNATed to.
func backendOf(t *testing.T, out []byte) netip.AddrPort {
	t.Helper()
	if len(out) < 14+20+4 {
		t.Fatalf("short output %x", out)
	}
	a, _ := netip.AddrFromSlice(out[14+16 : 14+20])
	return netip.AddrPortFrom(a, binary.BigEndian.Uint16(out[14+20+2:]))
}

// One flow sticks to its backend for 1,000 packets; 4,000 new flows spread
// evenly over 4 backends (chi-square, 3 degrees of freedom, p = 0.001).
func TestBackendAffinityAndSpread(t *testing.T) {
	dp := loadDatapath(t)
	backends := fourBackends()
	must(t, dp.Services.Upsert(webService(backends...)))

	t.Log("one flow, 1,000 packets (SYN then ACKs)")
	flow := fromPod(pod1, vip, 80)
	first := backendOf(t, run(t, dp.FromContainer, flow.bytes(t), nil).out)
	flow.syn, flow.ack = false, true
	in := flow.bytes(t)
	for i := range 999 {
		res := run(t, dp.FromContainer, in, nil)
		res.assertVerdict(t, tcActOK)
		if got := backendOf(t, res.out); got != first {
			t.Fatalf("packet %d went to %v, the flow is pinned to %v", i+2, got, first)
		}
	}
	e := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: first, Proto: ProtoTCP, Flags: TupleOut})
	if e.TxPackets != 1000 {
		t.Errorf("egress entry counted %d packets, want 1000", e.TxPackets)
	}

	t.Log("4,000 new flows")
	const flows = 4000
	counts := map[netip.AddrPort]int{}
	for i := range flows {
		p := fromPod(pod1, vip, 80)
		p.sport = uint16(1024 + i)
		counts[backendOf(t, run(t, dp.FromContainer, p.bytes(t), nil).out)]++
	}
	expected := float64(flows) / float64(len(backends))
	chi2 := 0.0
	for _, b := range backends {
		n := float64(counts[netip.AddrPortFrom(b.Addr, b.Port)])
		chi2 += (n - expected) * (n - expected) / expected
	}
	t.Logf("counts %v, chi-square %.2f", counts, chi2)
	if len(counts) != len(backends) || chi2 > 16.27 {
		t.Errorf("flows not spread evenly: %v (chi-square %.2f > 16.27)", counts, chi2)
	}
}

// When the pinned backend disappears, the flow moves to a live one.
func TestBackendRemovedReselects(t *testing.T) {
	dp := loadDatapath(t)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	in := fromPod(pod1, vip, 80).bytes(t)
	if got := backendOf(t, run(t, dp.FromContainer, in, nil).out); got != ap(pod4IP, 8080) {
		t.Fatalf("backend %v", got)
	}
	must(t, dp.Services.Upsert(webService(Backend{ID: 2, Addr: pod5IP, Port: 8080})))
	must(t, dp.Backends.Delete(1))
	if got := backendOf(t, run(t, dp.FromContainer, in, nil).out); got != ap(pod5IP, 8080) {
		t.Fatalf("after removal: backend %v, want %v", got, ap(pod5IP, 8080))
	}
	svc, err := dp.Services.Lookup(vip, 80, ProtoTCP)
	must(t, err)
	if len(svc.Backends) != 1 || svc.Backends[0].ID != 2 {
		t.Errorf("service read back as %+v", svc)
	}
}

// When the pinned backend disappears and several remain, the flow is pinned
// again: every later packet goes to the one backend it moved to, and the
// service CT entry records it.
func TestBackendRemovedRepins(t *testing.T) {
	dp := loadDatapath(t)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	flow := fromPod(pod1, vip, 80)
	run(t, dp.FromContainer, flow.bytes(t), nil).assertVerdict(t, tcActOK)

	var remaining []Backend
	for i := range 3 {
		remaining = append(remaining, Backend{ID: uint32(10 + i), Addr: netip.AddrFrom4([4]byte{10, 1, 2, byte(50 + i)}), Port: 8080})
	}
	must(t, dp.Services.Upsert(webService(remaining...)))
	must(t, dp.Backends.Delete(1))

	flow.syn, flow.ack = false, true
	in := flow.bytes(t)
	moved := backendOf(t, run(t, dp.FromContainer, in, nil).out)
	for i := range 49 {
		if got := backendOf(t, run(t, dp.FromContainer, in, nil).out); got != moved {
			t.Fatalf("packet %d after the removal went to %v, the flow moved to %v", i+2, got, moved)
		}
	}
	svcEntry := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService})
	var want uint32
	for _, b := range remaining {
		if netip.AddrPortFrom(b.Addr, b.Port) == moved {
			want = b.ID
		}
	}
	if want == 0 || svcEntry.BackendID != want || svcEntry.Backend != moved {
		t.Errorf("service CT entry pins backend %d at %v, the flow goes to %v (backend %d)", svcEntry.BackendID, svcEntry.Backend, moved, want)
	}
}

// A backend whose address changes under the same id takes its established
// flows along: the service entry's copy of the address goes, and the flow's
// next packet is load-balanced anew, to the backend's new address.
func TestBackendChangedMovesItsFlows(t *testing.T) {
	dp := loadDatapath(t)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	flow := fromPod(pod1, vip, 80)
	run(t, dp.FromContainer, flow.bytes(t), nil).assertVerdict(t, tcActOK)
	flow.syn, flow.ack = false, true
	in := flow.bytes(t)
	if got := backendOf(t, run(t, dp.FromContainer, in, nil).out); got != ap(pod4IP, 8080) {
		t.Fatalf("established packet went to %v", got)
	}
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod5IP, Port: 9090})))
	if got := backendOf(t, run(t, dp.FromContainer, in, nil).out); got != ap(pod5IP, 9090) {
		t.Errorf("after backend 1 moved to %v: established packet went to %v", ap(pod5IP, 9090), got)
	}
	// An unchanged upsert keeps the flows' entries.
	before := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService})
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod5IP, Port: 9090})))
	after := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService})
	if after.Created != before.Created || after.Backend != ap(pod5IP, 9090) {
		t.Errorf("an unchanged upsert replaced the service entry: %v, then %v", before, after)
	}
}

// fourBackends are backends 1-4 at 10.1.2.40-43:8080.
func fourBackends() []Backend {
	var backends []Backend
	for i := range 4 {
		backends = append(backends, Backend{ID: uint32(i + 1), Addr: netip.AddrFrom4([4]byte{10, 1, 2, byte(40 + i)}), Port: 8080})
	}
	return backends
}
