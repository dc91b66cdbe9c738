package datapath

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A trace event carries the first 128 bytes of a large packet and its
// original length.
func TestEventCapturesFirst128Bytes(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	p := fromPod(pod1, pod4IP, 8080)
	p.payload = bytes.Repeat([]byte("x"), 400)
	in := p.bytes(t)
	run(t, dp.FromContainer, in, nil).assertVerdict(t, tcActOK)
	tr := traces(drain(t, events))
	if len(tr) != 2 {
		t.Fatalf("traces %v", tr)
	}
	if tr[0].OrigLen != uint32(len(in)) || len(tr[0].Data) != 128 || !bytes.Equal(tr[0].Data, in[:128]) {
		t.Errorf("orig len %d, captured %d bytes", tr[0].OrigLen, len(tr[0].Data))
	}
	if !strings.HasPrefix(tr[0].String(), "FORWARDED (from-container) 10.1.1.10:40000 -> 10.1.2.40:8080 TCP SYN") {
		t.Errorf("String() = %q", tr[0].String())
	}
}

// With medium aggregation, an established packet produces no trace, a SYN
// only its to-stack trace, and drops are always reported.
func TestMonitorAggregation(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	must(t, dp.SetMonitorAggregation(AggregationMedium))
	p := fromPod(pod1, pod4IP, 8080)
	run(t, dp.FromContainer, p.bytes(t), nil)
	if tr := traces(drain(t, events)); len(tr) != 1 || tr[0].ObsPoint != TraceToStack {
		t.Fatalf("SYN traces %v, want only to-stack", tr)
	}
	p.syn, p.ack = false, true
	run(t, dp.FromContainer, p.bytes(t), nil)
	if evs := drain(t, events); len(evs) != 0 {
		t.Fatalf("established packet traced: %v", evs)
	}
	p.ttl = 1
	run(t, dp.FromContainer, p.bytes(t), nil)
	if d := drops(drain(t, events)); len(d) != 1 {
		t.Fatalf("drops %v", d)
	}
	// Still reported: a new flow without TCP flags (UDP), and a FIN of
	// an established one.
	udp := fromPod(pod1, pod4IP, 5353)
	udp.proto = ProtoUDP
	run(t, dp.FromContainer, udp.bytes(t), nil)
	if tr := traces(drain(t, events)); len(tr) != 1 || tr[0].ObsPoint != TraceToStack {
		t.Fatalf("new UDP flow traces %v, want to-stack", tr)
	}
	p.ttl, p.fin = 64, true
	run(t, dp.FromContainer, p.bytes(t), nil)
	if tr := traces(drain(t, events)); len(tr) != 1 || tr[0].ObsPoint != TraceToStack {
		t.Fatalf("FIN traces %v, want to-stack", tr)
	}

	// The same at to-container, for packets from the wire to pod1.
	in := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
		proto: ProtoUDP, sport: 50000, dport: 5353}
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActRedirect)
	if tr := traces(drain(t, events)); len(tr) != 1 || tr[0].ObsPoint != TraceToLXC {
		t.Fatalf("new UDP flow in traces %v, want to-container", tr)
	}
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActRedirect)
	if evs := drain(t, events); len(evs) != 0 {
		t.Fatalf("established UDP packet traced: %v", evs)
	}
	in.proto, in.dport, in.syn = ProtoTCP, 8080, true
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActRedirect)
	drain(t, events)
	in.syn, in.ack = false, true
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActRedirect)
	if evs := drain(t, events); len(evs) != 0 {
		t.Fatalf("established ACK traced: %v", evs)
	}
	in.fin = true
	run(t, dp.FromNetdev, in.bytes(t), nil).assertVerdict(t, tcActRedirect)
	if tr := traces(drain(t, events)); len(tr) != 1 || tr[0].ObsPoint != TraceToLXC {
		t.Fatalf("FIN in traces %v, want to-container", tr)
	}
}

// DecodeEvent rejects short and unknown samples.
func TestDecodeEventErrors(t *testing.T) {
	if _, err := DecodeEvent([]byte{4, 0, 0}); !errors.Is(err, ErrShortEvent) {
		t.Errorf("short header: %v", err)
	}
	raw := make([]byte, 32)
	raw[0], raw[12] = byte(MessageTrace), 10 // claims 10 captured bytes
	if _, err := DecodeEvent(raw); !errors.Is(err, ErrShortEvent) {
		t.Errorf("short capture: %v", err)
	}
	raw[0] = 99
	if _, err := DecodeEvent(raw); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown type: %v", err)
	}
}

// Load pins the maps under bpffs and a second load reuses them.
func TestLoadPinned(t *testing.T) {
	loadDatapath(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	first, err := Load(Options{PinPath: dir, CTEntries: 4096})
	must(t, err)
	defer first.Close()
	must(t, first.IPCache.Upsert(pfx("10.7.0.0/16"), IPCacheEntry{Identity: 77}))
	second, err := Load(Options{PinPath: dir, CTEntries: 4096})
	must(t, err)
	defer second.Close()
	e, err := second.IPCache.Lookup(addr("10.7.1.1"))
	must(t, err)
	if e.Identity != 77 {
		t.Errorf("second load sees identity %d", e.Identity)
	}
	if _, err := os.Stat(dir + "/hoplab_ct4_global"); err != nil {
		t.Errorf("CT map not pinned: %v", err)
	}
	if info, err := first.lxc.HoplabCt4Global.Info(); err != nil || info.MaxEntries != 4096 {
		t.Errorf("CT size %+v, %v; want 4096 entries", info, err)
	}
}

// DecodePacket gives the hop fields of a captured packet.
func TestDecodePacket(t *testing.T) {
	p := fromPod(pod1, vip, 80)
	pi, err := DecodePacket(p.bytes(t)[:60])
	must(t, err)
	if pi.EthSrc.String() != pod1.mac || pi.IPDst != vip || pi.TTL != 64 || pi.Proto != "tcp" || pi.SPort != 40000 || pi.DPort != 80 || pi.TCPFlags != "SYN" {
		t.Errorf("decoded %+v", pi)
	}
	if _, err := DecodePacket(arpRequest(t)); !errors.Is(err, ErrNotIPv4Packet) {
		t.Errorf("ARP: %v", err)
	}
}

// Without a reader the programs mute their notifications; a reader opened
// later sees the next packets' events.
func TestEventsMutedWithoutReader(t *testing.T) {
	dp := loadDatapath(t)
	in := fromPod(pod1, pod4IP, 8080).bytes(t)
	run(t, dp.FromContainer, in, nil).assertVerdict(t, tcActOK)
	var muted []uint32
	must(t, dp.eventsMuted.Lookup(uint32(0), &muted))
	if !slices.Contains(muted, 1) {
		t.Fatalf("no CPU muted without a reader: %v", muted)
	}
	events := openEvents(t, dp)
	run(t, dp.FromContainer, in, nil).assertVerdict(t, tcActOK)
	if tr := traces(drain(t, events)); len(tr) != 2 {
		t.Fatalf("traces after opening the reader: %v", tr)
	}
}

// A batch reader delivers pending events after Flush.
func TestBatchEventReaderFlush(t *testing.T) {
	dp := loadDatapath(t)
	r, err := dp.NewBatchEventReader(0)
	must(t, err)
	t.Cleanup(func() { r.Close() })
	run(t, dp.FromContainer, fromPod(pod1, pod4IP, 8080).bytes(t), nil).assertVerdict(t, tcActOK)
	must(t, r.Flush())
	if tr := traces(drain(t, r)); len(tr) != 2 {
		t.Fatalf("traces %v", tr)
	}
}
