package datapath

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/internal/testreq"
)

// Environment of TestFuzzInvariants.
const (
	// fzEnvPackets is the number of packets (default fzDefaultPackets;
	// the full run is HOPLAB_FUZZ_PACKETS=1000000).
	fzEnvPackets = "HOPLAB_FUZZ_PACKETS"
	// fzEnvSeed seeds packet generation (default fzDefaultSeed).
	fzEnvSeed = "HOPLAB_FUZZ_SEED"

	fzDefaultPackets = 20000
	fzDefaultSeed    = 1
	// fzCTBatch packets share the CT table; it is emptied between batches
	// so that it stays small (the snapshot after every run is one batch
	// lookup) and flows still meet their replies.
	fzCTBatch = 64
)

// The fuzzed node: pod1 and pod2 of helpers_test.go plus pod3, with
// policy enforced as follows (pod1: ingress and egress, pod2: ingress,
// pod3: egress), remote identities for node2's PodCIDR (pod5 with an
// identity of its own, a longer prefix), another PodCIDR, the host and
// the world, and services with local and remote backends, one backend the
// client may not reach and one service without backends.
var (
	fzPod3     = pod3
	fzVIP2     = netip.MustParseAddr("10.224.1.2")
	fzRemote3  = netip.MustParseAddr("10.1.3.7")
	fzRouter   = netip.MustParseAddr("10.255.2.1")
	fzPod5ID   = Identity(2005)
	fzRemoteID = Identity(3005)
)

type fzEndpoint struct {
	testEndpoint
	ingress, egress bool
}

// cb is skb->cb as from-container hands a NEW connection of ep to the
// egress policy stage.
func (e fzEndpoint) cb() *[5]uint32 {
	var flags uint32
	if e.ingress {
		flags |= 1
	}
	if e.egress {
		flags |= 2
	}
	return &[5]uint32{uint32(e.identity), 0, 0, uint32(e.id) | flags<<16, 0}
}

type fzPrefix struct {
	p  netip.Prefix
	id Identity
}

type fzSvcKey struct {
	vip   netip.Addr
	port  uint16
	proto Proto
}

// fzProg is one program of the datapath with what the fuzzer knows of it:
// the skb->cb it is run with and the model of what it may forward (nil:
// only invariants 2 to 4 are checked).
type fzProg struct {
	name    string
	prog    *ebpf.Program
	cb      func(f *fuzzer, v fzView) *[5]uint32
	allowed func(f *fuzzer, v fzView, out []byte, cb *[5]uint32) (ok bool, class, detail string)
}

// fzModels maps the datapath's programs (Datapath.Programs) to their
// models.
var fzModels = map[string]fzProg{
	"hoplab_from_container":   {allowed: (*fuzzer).fromContainerAllows},
	"tail_ipv4_egress_policy": {cb: (*fuzzer).egressStageCB, allowed: (*fuzzer).egressStageAllows},
	"hoplab_to_container":     {cb: (*fuzzer).toContainerCB, allowed: (*fuzzer).toContainerAllows},
	"hoplab_from_netdev":      {allowed: (*fuzzer).fromNetdevAllows},
	"hoplab_to_netdev":        {allowed: func(*fuzzer, fzView, []byte, *[5]uint32) (bool, string, string) { return true, "", "" }},
	"hoplab_from_overlay":     {cb: (*fuzzer).fromOverlayCB, allowed: (*fuzzer).fromOverlayAllows},
}

// fzFinding is one invariant broken by one run.
type fzFinding struct {
	inv           int
	class, detail string
}

// fzViolation collects the findings of one class, with its shortest input.
type fzViolation struct {
	fzFinding
	prog    fzProg
	count   int
	in, out []byte
	cb      *[5]uint32
	ret     uint32
}

// fzStats counts what was run and checked.
type fzStats struct {
	mutated, garbage, sweep int
	runs, refused           int
	mutations               map[string]int
	verdicts                map[string]map[uint32]int
	ipCsum, l4Csum          int // rewritten packets whose checksums were verified
	trailers                int // runs on frames with bytes after the IP total length
	dropsCT                 int // drops whose CT count was compared
	forwardsModelled        int // forwards checked against the policy model
	viaCT                   map[string]int
	ctShrunk                int            // runs that did not drop and left fewer CT entries
	ctDropShrunk            int            // drops that left fewer CT entries
	ctMax                   int            // the most CT entries after a run
	rewrites                map[string]int // forwarded packets by what changed
}

type fuzzer struct {
	t  *testing.T
	dp *Datapath
	r  *rand.Rand

	vnis *rand.Rand // VNIs for from-overlay, apart from r so that the packets stay those of the seed

	eps      map[netip.Addr]fzEndpoint
	byID     map[uint16]fzEndpoint
	ipcache  []fzPrefix
	policy   map[PolicyKey]bool // key -> deny
	services map[fzSvcKey]Service

	progs     []fzProg
	prev, cur *fzCT
	outBuf    []byte
	ring      []CTKey // flows forwarded lately, to continue, answer and quote
	sweep     [][]byte

	st         fzStats
	violations map[string]*fzViolation
}

// TestFuzzInvariants runs random and mutated packets through every program
// of the datapath under BPF_PROG_TEST_RUN and checks, on every run:
//
//  1. a flow the policy installed here denies (by this test's own model of
//     Cilium's lookup order, with the identities of the ipcache or of
//     skb->cb) is never forwarded (TC_ACT_OK or redirect), unless
//     connection tracking lets it through as established, reply or
//     related to an entry whose creation the model allows; neither is a
//     packet from a source that is not a local pod (from-container), with
//     an invalid IPv4 or L4 header, or with TTL <= 1 where the datapath
//     routes; a service flow is only forwarded DNATed to a backend;
//  2. a rewritten packet whose IPv4 and L4 (TCP, UDP, ICMP) checksums were
//     right still has right ones, computed over the IP total length (a
//     zero UDP checksum stays zero);
//  3. the frame keeps its length; bytes past the IP total length (Ethernet
//     padding, trailers) never change; only MACs, TTL, the header
//     checksum, and for TCP/UDP with a whole header the addresses, ports
//     and L4 checksum do; a frame the datapath cannot parse as IPv4 is not
//     changed at all;
//  4. a run that drops does not grow the CT table (counted with one batch
//     lookup before and after every run; the table is emptied every
//     fzCTBatch packets).
//
// The packets (HOPLAB_FUZZ_PACKETS, default 20,000; seed HOPLAB_FUZZ_SEED)
// are every truncation of a few base packets, then flows of pods, remote
// hosts and services (continuations and replies of flows forwarded
// before, ICMP errors quoting them) with random flags, options, payloads
// and Ethernet padding, more than half of them mutated (byte flips,
// truncation, total length, IHL, TCP data offset, fragments, protocol,
// EtherType, trailers, TTL), half of those with checksums fixed again.
// Every program of Datapath.Programs runs on every packet: the egress
// policy stage with the skb->cb from-container would hand it, to-container
// with an identity in skb->cb or none, from-overlay behind a tunnel key
// (overlayHarness) whose VNI is a cluster identity, WORLD, or the invalid
// 0 and HOST. Backend selection is random in the
// datapath, so only the packets, not the verdicts, repeat with a seed.
//
// Each broken class is reported once with its shortest input, replayed
// alone on an empty CT table (with its drop reason), and fails the test.
//
// BPF_PROG_TEST_RUN hands programs CHECKSUM_NONE skbs, so what
// BPF_F_PSEUDO_HDR changes (CHECKSUM_PARTIAL skbs of local sockets) is out
// of its reach: TestRealSocketsThroughService covers that.
func TestFuzzInvariants(t *testing.T) {
	count := fzEnvInt(t, fzEnvPackets, fzDefaultPackets)
	seed := uint64(fzEnvInt(t, fzEnvSeed, fzDefaultSeed))
	t.Logf("seed %d (%s), %d packets (%s)", seed, fzEnvSeed, count, fzEnvPackets)
	f := newFuzzer(t, seed)

	start := time.Now()
	lastLog := start
	for i := range count {
		if i%fzCTBatch == 0 {
			must(t, f.cur.flush())
		}
		in := f.next(i)
		v := fzParse(in)
		for _, p := range f.progs {
			var cb *[5]uint32
			if p.cb != nil {
				cb = p.cb(f, v)
			}
			f.runOne(p, in, v, cb)
		}
		if time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			t.Logf("%d packets, %.0f/s", i+1, float64(i+1)/time.Since(start).Seconds())
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d packets (%d truncation sweep, %d mutated, %d garbage), %d program runs (%d refused by BPF_PROG_TEST_RUN) in %v: %.0f packets/s, %.0f runs/s",
		count, f.st.sweep, f.st.mutated, f.st.garbage, f.st.runs, f.st.refused, elapsed.Round(time.Millisecond),
		float64(count)/elapsed.Seconds(), float64(f.st.runs)/elapsed.Seconds())
	f.logStats()
	f.report()
}

func fzEnvInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, s)
	}
	return n
}

// newFuzzer loads the datapath with a small CT table and installs the
// fuzzed node's state, keeping the model of it.
func newFuzzer(t *testing.T, seed uint64) *fuzzer {
	testreq.Root(t)
	dp, err := Load(Options{CTEntries: 1024})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { dp.Close() })
	f := &fuzzer{
		t: t, dp: dp, r: rand.New(rand.NewPCG(seed, 0x686f706c6162)), vnis: rand.New(rand.NewPCG(seed, 0x766e69)),
		eps: map[netip.Addr]fzEndpoint{}, byID: map[uint16]fzEndpoint{},
		policy: map[PolicyKey]bool{}, services: map[fzSvcKey]Service{},
		prev: newFzCT(dp.CT.m), cur: newFzCT(dp.CT.m), outBuf: make([]byte, 4096),
		violations: map[string]*fzViolation{},
		st: fzStats{mutations: map[string]int{}, verdicts: map[string]map[uint32]int{}, viaCT: map[string]int{},
			rewrites: map[string]int{}},
	}

	for _, e := range []fzEndpoint{{pod1, true, true}, {pod2, true, false}, {fzPod3, false, true}} {
		addEndpoint(t, dp, e.testEndpoint, e.ingress, e.egress)
		f.eps[e.addr()], f.byID[e.id] = e, e
		f.ipcache = append(f.ipcache, fzPrefix{netip.PrefixFrom(e.addr(), 32), e.identity})
	}
	for _, p := range []fzPrefix{
		{pfx("10.1.2.0/24"), pod4ID},
		{netip.PrefixFrom(pod5IP, 32), fzPod5ID},
		{pfx("10.1.3.0/24"), fzRemoteID},
		{netip.PrefixFrom(node1IP, 32), IdentityHost},
	} {
		must(t, dp.IPCache.Upsert(p.p, IPCacheEntry{Identity: p.id}))
		f.ipcache = append(f.ipcache, p)
	}

	for _, e := range []struct {
		k    PolicyKey
		deny bool
	}{
		{L3L4Key(pod1.id, Egress, pod4ID, 8080, ProtoTCP), false},
		{L3L4Key(pod1.id, Egress, pod4ID, 9090, ProtoTCP), true},
		{L3L4Key(pod1.id, Egress, pod2.identity, 8080, ProtoTCP), false},
		{L4OnlyKey(pod1.id, Egress, 5353, ProtoUDP), false},
		{L3L4Key(pod1.id, Egress, pod2.identity, 0, ProtoICMP), false},
		{L3OnlyKey(pod1.id, Egress, fzPod3.identity), false},
		{L3OnlyKey(pod1.id, Egress, IdentityHost), false},

		{L3L4Key(pod1.id, Ingress, pod4ID, 8080, ProtoTCP), false},
		{L3OnlyKey(pod1.id, Ingress, pod2.identity), false},
		{L4OnlyKey(pod1.id, Ingress, 22, ProtoTCP), true},
		{L3L4Key(pod1.id, Ingress, fzRemoteID, 0, ProtoICMP), false},

		{L3L4Key(pod2.id, Ingress, pod1.identity, 8080, ProtoTCP), false},
		{L3L4Key(pod2.id, Ingress, pod1.identity, 5353, ProtoUDP), false},
		{L3L4Key(pod2.id, Ingress, pod1.identity, 0, ProtoICMP), false},
		{L4OnlyKey(pod2.id, Ingress, 8081, ProtoTCP), false},
		{L3L4Key(pod2.id, Ingress, pod4ID, 8081, ProtoTCP), true},
		{L3OnlyKey(pod2.id, Ingress, fzPod3.identity), false},
		{L3L4Key(pod2.id, Ingress, pod4ID, 5353, ProtoUDP), false},

		{AllowAllKey(fzPod3.id, Egress), false},
		{L3L4Key(fzPod3.id, Egress, pod4ID, 8080, ProtoTCP), true},
		{L4OnlyKey(fzPod3.id, Egress, 5353, ProtoUDP), true},
		{L3L4Key(fzPod3.id, Egress, pod4ID, 5353, ProtoUDP), false},
	} {
		if e.deny {
			must(t, dp.Policy.Deny(e.k))
		} else {
			must(t, dp.Policy.Allow(e.k))
		}
		f.policy[e.k] = e.deny
	}

	for _, s := range []Service{
		{VIP: vip, Port: 80, Proto: ProtoTCP, ID: 1, Backends: []Backend{{ID: 1, Addr: pod4IP, Port: 8080}, {ID: 2, Addr: pod2.addr(), Port: 8080}}},
		{VIP: vip, Port: 53, Proto: ProtoUDP, ID: 2, Backends: []Backend{{ID: 3, Addr: pod2.addr(), Port: 5353}, {ID: 4, Addr: pod4IP, Port: 5353}}},
		{VIP: vip, Port: 81, Proto: ProtoTCP, ID: 3, Backends: []Backend{{ID: 5, Addr: pod2.addr(), Port: 9090}}},
		{VIP: vip, Port: 82, Proto: ProtoTCP, ID: 4},
		{VIP: fzVIP2, Port: 8080, Proto: ProtoTCP, ID: 5, Backends: []Backend{{ID: 6, Addr: fzPod3.addr(), Port: 8080}, {ID: 7, Addr: pod1.addr(), Port: 8080}}},
	} {
		must(t, dp.Services.Upsert(s))
		f.services[fzSvcKey{s.VIP, s.Port, s.Proto}] = s
	}

	progs := dp.Programs()
	names := slices.Sorted(maps.Keys(progs))
	for _, name := range names {
		p, ok := fzModels[name]
		if !ok {
			t.Logf("program %s has no policy model here: invariants 2 to 4 only", name)
		}
		p.name, p.prog = name, progs[name]
		if name == "hoplab_from_overlay" {
			// A VXLAN device sets the tunnel key before from-overlay runs.
			p.prog = overlayHarness(t, dp)
		}
		f.progs = append(f.progs, p)
	}
	t.Logf("programs: %s", strings.Join(names, ", "))
	f.sweep = f.sweepPackets()
	return f
}

// ---- Reporting.

func (f *fuzzer) logStats() {
	t := f.t
	var muts []string
	for _, m := range fzMutations {
		muts = append(muts, fmt.Sprintf("%s %d", m.name, f.st.mutations[m.name]))
	}
	t.Logf("mutations: %s", strings.Join(muts, ", "))
	for _, p := range f.progs {
		vs := f.st.verdicts[p.name]
		t.Logf("%-24s OK %d, SHOT %d, REDIRECT %d", p.name, vs[tcActOK], vs[tcActShot], vs[tcActRedirect])
	}
	var via []string
	for _, k := range slices.Sorted(maps.Keys(f.st.viaCT)) {
		via = append(via, fmt.Sprintf("%s %d", k, f.st.viaCT[k]))
	}
	t.Logf("checked: (1) %d forwards against the policy model (denied by policy, passed by CT: %s); (2) %d IPv4 and %d L4 checksums of rewritten packets; (3) %d runs on frames with bytes past the IP total length; (4) CT size across %d drops",
		f.st.forwardsModelled, strings.Join(via, ", "), f.st.ipCsum, f.st.l4Csum, f.st.trailers, f.st.dropsCT)
	var rw []string
	for _, k := range []string{"MACs", "TTL", "source address", "destination address", "source port", "destination port"} {
		rw = append(rw, fmt.Sprintf("%s %d", k, f.st.rewrites[k]))
	}
	t.Logf("forwarded packets rewritten: %s; CT held at most %d entries", strings.Join(rw, ", "), f.st.ctMax)
	if f.st.ctShrunk > 0 {
		t.Logf("CT shrank during %d runs that did not drop (LRU eviction?): CT entries may have been missing for invariant 1", f.st.ctShrunk)
	}
	if f.st.ctDropShrunk > 0 {
		t.Logf("CT shrank during %d drops: a drop deletes the entries its packet created, also where one replaced a live entry of its key (the egress stage run on its own creates its entry whether or not one exists)", f.st.ctDropShrunk)
	}
}

// report logs every violation class with its shortest input, replayed
// alone on an empty CT table with events on, so that its drop reason
// shows and it is clear whether it needs the state before it.
func (f *fuzzer) report() {
	if len(f.violations) == 0 {
		f.t.Logf("no invariant broken")
		return
	}
	events := openEvents(f.t, f.dp)
	keys := slices.Sorted(maps.Keys(f.violations))
	for _, k := range keys {
		vl := f.violations[k]
		must(f.t, f.cur.flush())
		drain(f.t, events)
		ret, out, err := f.exec(vl.prog.prog, vl.in, vl.cb)
		must(f.t, err)
		f.prev, f.cur = f.cur, f.prev
		must(f.t, f.cur.dump())
		again := false
		for _, fd := range f.check(vl.prog, vl.in, fzParse(vl.in), vl.cb, ret, out, false) {
			again = again || (fd.inv == vl.inv && fd.class == vl.class)
		}
		var reasons []string
		for _, d := range drops(drain(f.t, events)) {
			reasons = append(reasons, d.Reason.String())
		}
		f.t.Errorf("invariant %d, %s: %s — %d times; shortest input (%d bytes), verdict %d, cb %v: %s\n in: %x\nout: %x\n%s\nreplayed alone on an empty CT: verdict %d, drops %q, reproduces: %v",
			vl.inv, vl.prog.name, vl.class, vl.count, len(vl.in), vl.ret, fzCBString(vl.cb), vl.detail, vl.in, vl.out,
			gopacket.NewPacket(vl.in, layers.LayerTypeEthernet, gopacket.Default), ret, reasons, again)
	}
}

func fzCBString(cb *[5]uint32) string {
	if cb == nil {
		return "none"
	}
	return fmt.Sprint(*cb)
}
