package datapath

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

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
// with an identity in skb->cb or none. Backend selection is random in the
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
		t: t, dp: dp, r: rand.New(rand.NewPCG(seed, 0x686f706c6162)),
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
		f.progs = append(f.progs, p)
	}
	t.Logf("programs: %s", strings.Join(names, ", "))
	f.sweep = f.sweepPackets()
	return f
}

// ---- The model.

// identity is the ipcache's answer for a: the longest prefix, else WORLD.
func (f *fuzzer) identity(a netip.Addr) Identity {
	best, id := -1, IdentityWorld
	for _, p := range f.ipcache {
		if p.p.Contains(a) && p.p.Bits() > best {
			best, id = p.p.Bits(), p.id
		}
	}
	if id == IdentityUnknown {
		return IdentityWorld
	}
	return id
}

// policyAllows is Cilium's lookup order over the installed entries: L3L4,
// L4-only, L3-only, allow-all, first match decides; no match denies. ICMP
// is looked up with port 0.
func (f *fuzzer) policyAllows(ep uint16, dir Direction, remote Identity, port uint16, proto Proto) bool {
	if proto == ProtoICMP {
		port = 0
	}
	for _, k := range []PolicyKey{L3L4Key(ep, dir, remote, port, proto), L4OnlyKey(ep, dir, port, proto),
		L3OnlyKey(ep, dir, remote), AllowAllKey(ep, dir)} {
		if deny, ok := f.policy[k]; ok {
			return !deny
		}
	}
	return false
}

func policyPort(k CTKey) uint16 {
	if k.Proto == ProtoICMP {
		return 0
	}
	return k.Dst.Port()
}

// entryAllowed reports whether the model allows the creation of CT entry
// e: an egress entry by its pod's egress policy (a source that is no local
// pod: made by the egress stage run directly with a pod that does not
// enforce egress), an ingress entry by its pod's ingress policy for the
// identity stored in it.
func (f *fuzzer) entryAllowed(e CTEntry) bool {
	k := e.Key
	switch k.Flags {
	case TupleOut:
		ep, ok := f.eps[k.Src.Addr()]
		if !ok || !ep.egress {
			return true
		}
		return f.policyAllows(ep.id, Egress, f.identity(k.Dst.Addr()), policyPort(k), k.Proto)
	case TupleIn:
		ep, ok := f.eps[k.Dst.Addr()]
		if !ok {
			return false
		}
		return !ep.ingress || f.policyAllows(ep.id, Ingress, e.SrcIdentity, policyPort(k), k.Proto)
	}
	return false
}

// ctPasses reports whether CT (as it is after the run) has an entry that
// makes the packet of tuple (direction dir) skip policy — the flow quoted by
// an ICMP error, the tuple itself, or its reverse in the other direction —
// whose own creation the model allows. An entry the run made wrongly is
// thus no excuse. Lifetimes are not compared (an entry may expire between
// the run and the snapshot).
func (f *fuzzer) ctPasses(tuple CTKey, related *CTKey, dir TupleFlags) (bool, string) {
	opp := TupleIn
	if dir == TupleIn {
		opp = TupleOut
	}
	if related != nil {
		r := *related
		r.Flags = opp
		if e, ok := f.cur.find(r); ok && f.entryAllowed(e) {
			return true, "related"
		}
	}
	tuple.Flags = dir
	if e, ok := f.cur.find(tuple); ok && f.entryAllowed(e) {
		return true, "established"
	}
	rev := CTKey{Src: tuple.Dst, Dst: tuple.Src, Proto: tuple.Proto, Flags: opp}
	if e, ok := f.cur.find(rev); ok && f.entryAllowed(e) {
		return true, "reply"
	}
	return false, ""
}

// egressPath is what follows the service translation of a packet from
// pod ep (srcID) to tuple.Dst: egress policy for NEW flows (useCT: the
// program looks CT up first), the TTL rule, and for a local destination
// its ingress policy.
func (f *fuzzer) egressPath(ep fzEndpoint, srcID Identity, v fzView, tuple CTKey, useCT bool) (bool, string, string) {
	dst := tuple.Dst.Addr()
	dstID := f.identity(dst)
	if ep.egress && !f.policyAllows(ep.id, Egress, dstID, policyPort(tuple), tuple.Proto) {
		ok, how := false, ""
		if useCT {
			ok, how = f.ctPasses(tuple, v.related, TupleOut)
		}
		if !ok {
			return false, fmt.Sprintf("egress policy denies (pod %d enforcing egress)", ep.id),
				fmt.Sprintf("pod %d egress to identity %d %v port %d: denied, no CT entry lets it pass", ep.id, dstID, tuple.Proto, policyPort(tuple))
		}
		f.st.viaCT["egress "+how]++
	}
	dstEp, local := f.eps[dst]
	if v.ttl <= 1 && (local || dstID != IdentityHost) {
		return false, "TTL <= 1 forwarded", fmt.Sprintf("TTL %d to %v", v.ttl, dst)
	}
	if local {
		if !v.ethIPv4 {
			// Only the egress stage run directly sees such a frame
			// (from-container passes it before); the to-container it
			// tail-calls passes it as not IPv4.
			return true, "", ""
		}
		return f.ingressPath(dstEp, srcID, v, tuple)
	}
	return true, "", ""
}

// ingressPath is to-container's policy for a NEW flow into pod ep.
func (f *fuzzer) ingressPath(ep fzEndpoint, srcID Identity, v fzView, tuple CTKey) (bool, string, string) {
	if !ep.ingress || f.policyAllows(ep.id, Ingress, srcID, policyPort(tuple), tuple.Proto) {
		return true, "", ""
	}
	ok, how := f.ctPasses(tuple, v.related, TupleIn)
	if !ok {
		return false, fmt.Sprintf("ingress policy denies (pod %d enforcing ingress)", ep.id),
			fmt.Sprintf("pod %d ingress from identity %d %v port %d: denied, no CT entry lets it pass", ep.id, srcID, tuple.Proto, policyPort(tuple))
	}
	f.st.viaCT["ingress "+how]++
	return true, "", ""
}

func (f *fuzzer) fromContainerAllows(v fzView, out []byte, _ *[5]uint32) (bool, string, string) {
	if !v.ethIPv4 {
		return true, "", ""
	}
	if !v.valid {
		return false, "invalid IPv4 forwarded", ""
	}
	ep, ok := f.eps[v.src]
	if !ok {
		return false, "source is not a local pod", v.src.String()
	}
	if !v.l4ok {
		return false, "invalid L4 header forwarded", ""
	}
	tuple := v.tuple(TupleOut)
	if svc, ok := f.services[fzSvcKey{v.dst, v.dport, Proto(v.proto)}]; ok && (v.proto == uint8(ProtoTCP) || v.proto == uint8(ProtoUDP)) {
		if len(svc.Backends) == 0 {
			return false, "service without backends forwarded", ""
		}
		ov := fzParse(out)
		found := false
		for _, b := range svc.Backends {
			if ov.valid && ov.l4ok && ov.dst == b.Addr && ov.dport == b.Port {
				found = true
			}
		}
		if !found {
			return false, "service flow forwarded, not DNATed to a backend",
				fmt.Sprintf("%v:%d -> %v:%d", v.dst, v.dport, ov.dst, ov.dport)
		}
		tuple.Dst = netip.AddrPortFrom(ov.dst, ov.dport)
	}
	return f.egressPath(ep, ep.identity, v, tuple, true)
}

// egressStageCB hands the egress stage the packet's pod, or for other
// sources pod2, which does not enforce egress.
func (f *fuzzer) egressStageCB(v fzView) *[5]uint32 {
	if ep, ok := f.eps[v.src]; ok {
		return ep.cb()
	}
	return f.byID[pod2.id].cb()
}

func (f *fuzzer) egressStageAllows(v fzView, _ []byte, cb *[5]uint32) (bool, string, string) {
	if !v.valid {
		return false, "invalid IPv4 forwarded", ""
	}
	if !v.l4ok {
		return false, "invalid L4 header forwarded", ""
	}
	ep := f.byID[uint16(cb[3])]
	return f.egressPath(ep, Identity(cb[0]), v, v.tuple(TupleOut), false)
}

// fzIdentities are the identities to-container is handed in skb->cb.
var fzIdentities = []Identity{pod1.identity, pod2.identity, fzPod3.identity, pod4ID, fzPod5ID, fzRemoteID, IdentityHost, IdentityWorld}

// toContainerCB: half the runs with the identity in skb->cb, half with
// none (to-container asks the ipcache).
func (f *fuzzer) toContainerCB(fzView) *[5]uint32 {
	if f.r.IntN(2) == 0 {
		return nil
	}
	return &[5]uint32{uint32(fzIdentities[f.r.IntN(len(fzIdentities))])}
}

func (f *fuzzer) toContainerAllows(v fzView, _ []byte, cb *[5]uint32) (bool, string, string) {
	if !v.ethIPv4 {
		return true, "", ""
	}
	if !v.valid {
		return false, "invalid IPv4 forwarded", ""
	}
	ep, ok := f.eps[v.dst]
	if !ok {
		return false, "destination is not a local pod", v.dst.String()
	}
	if !v.l4ok {
		return false, "invalid L4 header forwarded", ""
	}
	src := f.identity(v.src)
	if cb != nil && cb[0] != 0 {
		src = Identity(cb[0])
	}
	return f.ingressPath(ep, src, v, v.tuple(TupleIn))
}

func (f *fuzzer) fromNetdevAllows(v fzView, _ []byte, _ *[5]uint32) (bool, string, string) {
	if !v.ethIPv4 {
		return true, "", ""
	}
	if !v.valid {
		return false, "invalid IPv4 forwarded", ""
	}
	ep, ok := f.eps[v.dst]
	if !ok {
		return true, "", "" // not for a local pod: to the stack untouched
	}
	if v.ttl <= 1 {
		return false, "TTL <= 1 forwarded", fmt.Sprintf("TTL %d to %v", v.ttl, v.dst)
	}
	if !v.l4ok {
		return false, "invalid L4 header forwarded", ""
	}
	return f.ingressPath(ep, f.identity(v.src), v, v.tuple(TupleIn))
}

// ---- Running and checking.

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

// ---- Packets.

var (
	fzLocals   = []netip.Addr{pod1.addr(), pod2.addr(), fzPod3.addr()}
	fzRemotes  = []netip.Addr{pod4IP, pod5IP, fzRemote3, node1IP, worldIP, fzRouter}
	fzVIPs     = []netip.Addr{vip, fzVIP2}
	fzPorts    = []uint16{8080, 9090, 8081, 22, 80, 81, 82, 53, 5353, 40000, 50000}
	fzSvcPorts = []uint16{80, 81, 82, 53, 8080}
	fzSports   = []uint16{40000, 40001, 33333, 50000, 8080, 5353, 80, 53}
	fzTCPFlags = []uint8{0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01}
)

// fzMenu are flows the policy and services above decide in every way:
// allowed and denied at egress, at ingress, or at both ends, through a
// service or not.
var fzMenu = []struct {
	src, dst netip.Addr
	proto    Proto
	dport    uint16
}{
	{pod1.addr(), vip, ProtoTCP, 80}, {pod1.addr(), vip, ProtoUDP, 53}, {pod1.addr(), vip, ProtoTCP, 81},
	{pod1.addr(), vip, ProtoTCP, 82}, {pod1.addr(), fzVIP2, ProtoTCP, 8080}, {pod2.addr(), vip, ProtoTCP, 80},
	{pod2.addr(), fzVIP2, ProtoTCP, 8080}, {fzPod3.addr(), vip, ProtoUDP, 53}, {fzPod3.addr(), fzVIP2, ProtoTCP, 8080},
	{fzPod3.addr(), vip, ProtoTCP, 80}, {pod1.addr(), pod4IP, ProtoTCP, 8080}, {pod1.addr(), pod4IP, ProtoTCP, 9090},
	{pod1.addr(), pod2.addr(), ProtoTCP, 8080}, {pod1.addr(), pod2.addr(), ProtoICMP, 0}, {pod1.addr(), fzPod3.addr(), ProtoUDP, 1234},
	{pod1.addr(), node1IP, ProtoTCP, 10250}, {pod1.addr(), worldIP, ProtoTCP, 443},
	{pod4IP, pod1.addr(), ProtoTCP, 8080}, {pod4IP, pod1.addr(), ProtoTCP, 22}, {pod4IP, pod2.addr(), ProtoTCP, 8081},
	{pod5IP, pod2.addr(), ProtoTCP, 8081}, {fzRemote3, pod1.addr(), ProtoICMP, 0}, {worldIP, pod1.addr(), ProtoTCP, 443},
	{pod4IP, pod2.addr(), ProtoUDP, 5353}, {fzPod3.addr(), pod2.addr(), ProtoTCP, 9999}, {pod2.addr(), pod1.addr(), ProtoTCP, 22},
	{node1IP, pod1.addr(), ProtoTCP, 8080}, {fzPod3.addr(), pod4IP, ProtoUDP, 5353}, {fzPod3.addr(), pod5IP, ProtoUDP, 5353},
}

func (f *fuzzer) pick(s []netip.Addr) netip.Addr { return s[f.r.IntN(len(s))] }

func (f *fuzzer) port(s []uint16) uint16 {
	if f.r.IntN(8) == 0 {
		return uint16(1 + f.r.IntN(65535))
	}
	return s[f.r.IntN(len(s))]
}

func (f *fuzzer) bytesN(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f.r.UintN(256))
	}
	return b
}

// setMACs gives the frame the addresses of where it enters: a pod's eth0
// towards its lxc, or the ToR towards bond0.
func (f *fuzzer) setMACs(s *fzShape) {
	if ep, ok := f.eps[s.src]; ok {
		s.srcMAC, s.dstMAC = [6]byte(ep.podMAC()), [6]byte(ep.lxcMAC())
		return
	}
	s.srcMAC, s.dstMAC = [6]byte(torMAC), [6]byte(bond0MAC)
}

// setEcho makes s an ICMP echo request (ICMP tuple with a source port) or
// reply.
func setEcho(s *fzShape, k CTKey) {
	s.proto = uint8(ProtoICMP)
	if k.Src.Port() != 0 {
		s.icmpType, s.icmpID = 8, k.Src.Port()
	} else {
		s.icmpType, s.icmpID = 0, k.Dst.Port()
	}
}

// flow picks the addresses, protocol and ports of the next packet.
func (f *fuzzer) flow(s *fzShape) {
	r := f.r
	x := r.IntN(100)
	if len(f.ring) > 0 && x < 33 {
		k := f.recent()
		switch {
		case x < 25:
			// The same flow again, or its reply.
			if r.IntN(2) == 0 {
				k = CTKey{Src: k.Dst, Dst: k.Src, Proto: k.Proto}
			}
			s.src, s.dst, s.proto, s.sport, s.dport = k.Src.Addr(), k.Dst.Addr(), uint8(k.Proto), k.Src.Port(), k.Dst.Port()
			if k.Proto == ProtoICMP {
				setEcho(s, k)
			}
			return
		case k.Proto != ProtoICMP:
			// An ICMP error about it, from its destination or a router,
			// to its source.
			s.proto, s.icmpType, s.icmpCode = uint8(ProtoICMP), []uint8{3, 11, 12}[r.IntN(3)], uint8(r.IntN(4))
			s.src, s.dst = k.Dst.Addr(), k.Src.Addr()
			if r.IntN(2) == 0 {
				s.src = fzRouter
			}
			s.payload = quote(k.Src, k.Dst, uint8(k.Proto))
			return
		}
	}

	if r.IntN(5) < 2 {
		m := fzMenu[r.IntN(len(fzMenu))]
		s.src, s.dst, s.proto, s.dport = m.src, m.dst, uint8(m.proto), m.dport
		s.sport = f.port(fzSports)
		if m.proto == ProtoICMP {
			s.icmpType, s.icmpID = 8, []uint16{1, 7, 42}[r.IntN(3)]
		}
		return
	}
	if r.IntN(2) == 0 {
		s.src = f.pick(fzLocals)
		switch y := r.IntN(10); {
		case y < 3:
			s.dst = f.pick(fzLocals)
		case y < 6:
			s.dst = f.pick(fzRemotes)
		default:
			s.dst = f.pick(fzVIPs)
		}
	} else {
		s.src = f.pick(fzRemotes)
		s.dst = f.pick(fzLocals)
		if r.IntN(5) == 0 {
			s.dst = f.pick(append(fzRemotes[:len(fzRemotes):len(fzRemotes)], fzVIPs...))
		}
	}
	s.sport = f.port(fzSports)
	if slices.Contains(fzVIPs, s.dst) && r.IntN(2) == 0 {
		s.dport = f.port(fzSvcPorts)
	} else {
		s.dport = f.port(fzPorts)
	}
	switch y := r.IntN(10); {
	case y < 5:
		s.proto = uint8(ProtoTCP)
	case y < 8:
		s.proto = uint8(ProtoUDP)
	default:
		s.proto = uint8(ProtoICMP)
		s.icmpID = []uint16{1, 7, 42, uint16(r.IntN(65536))}[r.IntN(4)]
		switch z := r.IntN(10); {
		case z < 5:
			s.icmpType = 8
		case z < 7:
			s.icmpType = 0
		case z < 9:
			s.icmpType, s.icmpID = []uint8{3, 11, 12}[r.IntN(3)], 0
			q := []uint8{uint8(ProtoTCP), uint8(ProtoUDP)}[r.IntN(2)]
			// About a packet the destination sent.
			s.payload = quote(netip.AddrPortFrom(s.dst, f.port(fzSports)), netip.AddrPortFrom(f.pick(append(fzRemotes[:len(fzRemotes):len(fzRemotes)], fzLocals...)), f.port(fzPorts)), q)
		default:
			s.icmpType = uint8(r.IntN(256))
		}
	}
}

// randomShape is a valid packet of a random flow with random details.
func (f *fuzzer) randomShape() fzShape {
	r := f.r
	s := fzShape{ttl: 64, window: uint16(r.IntN(65536)), seq: r.Uint32(), ipID: uint16(r.IntN(65536)),
		df: r.IntN(2) == 0, icmpSeq: uint16(r.IntN(65536))}
	f.flow(&s)
	f.setMACs(&s)
	s.tcpFlags = fzTCPFlags[r.IntN(len(fzTCPFlags))]
	if r.IntN(10) == 0 {
		s.tcpFlags = uint8(r.IntN(256))
	}
	if s.tcpFlags&0x10 != 0 {
		s.ack = r.Uint32()
	}
	if r.IntN(7) == 0 {
		s.ttl = []uint8{0, 1, 2, 255, uint8(r.IntN(256))}[r.IntN(5)]
	}
	if r.IntN(10) == 0 {
		s.tos = uint8(r.IntN(256))
	}
	if r.IntN(10) == 0 {
		n := 4 * (1 + r.IntN(10))
		if r.IntN(2) == 0 {
			s.ipOpts = bytes.Repeat([]byte{1}, n) // NOPs ...
			s.ipOpts[n-1] = 0                     // ... and End of Options
		} else {
			s.ipOpts = f.bytesN(n)
		}
	}
	if s.proto == uint8(ProtoTCP) && r.IntN(5) == 0 {
		if r.IntN(5) == 0 {
			s.tcpOpts = f.bytesN(4 * (1 + r.IntN(10)))
		} else {
			opts := []byte{2, 4, 0x05, 0xb4} // MSS
			if r.IntN(2) == 0 {
				opts = append(opts, 1, 1, 4, 2) // SACK permitted
			}
			if r.IntN(2) == 0 {
				opts = append(append(opts, 1, 1, 8, 10), f.bytesN(8)...) // timestamps
			}
			if r.IntN(2) == 0 {
				opts = append(opts, 1, 3, 3, 7) // window scale
			}
			s.tcpOpts = opts
		}
	}
	if s.payload == nil {
		switch y := r.IntN(20); {
		case y < 8:
		case y < 16:
			s.payload = f.bytesN(1 + r.IntN(64))
		case y < 19:
			s.payload = f.bytesN(65 + r.IntN(448))
		default:
			s.payload = f.bytesN(513 + r.IntN(900))
		}
	}
	s.udpNoCsum = r.IntN(7) == 0
	if r.IntN(7) == 0 {
		if r.IntN(2) == 0 {
			s.trailer = make([]byte, 1+r.IntN(24)) // zero padding
		} else {
			s.trailer = f.bytesN(1 + r.IntN(32))
		}
	}
	return s
}

// next returns packet i: the truncation sweep first, then random packets,
// mutated or not.
func (f *fuzzer) next(i int) []byte {
	if i < len(f.sweep) {
		f.st.sweep++
		return f.sweep[i]
	}
	r := f.r
	if r.IntN(50) == 0 {
		// Garbage behind an IPv4 EtherType.
		f.st.garbage++
		b := f.bytesN(14 + 20 + r.IntN(100))
		b[12], b[13] = 0x08, 0x00
		if r.IntN(2) == 0 {
			b[14] = 0x45
		}
		return b
	}
	b := f.randomShape().build()
	if r.IntN(100) < 55 {
		f.st.mutated++
		for range 1 + r.IntN(3) {
			m := fzMutations[r.IntN(len(fzMutations))]
			f.st.mutations[m.name]++
			b = m.f(r, b)
		}
		if r.IntN(2) == 0 {
			fzFixChecksums(b)
		}
	}
	return b
}

// sweepPackets are every truncation (down to the Ethernet header) of a
// few packets: TCP and UDP to services, ICMP echo padded to Ethernet's
// minimum, TCP with IP and TCP options, an ICMP error, a bare ACK with
// padding.
func (f *fuzzer) sweepPackets() [][]byte {
	base := []fzShape{
		{src: pod1.addr(), dst: vip, proto: uint8(ProtoTCP), sport: 40000, dport: 80, tcpFlags: 0x02, payload: []byte("0123456789abcdef")},
		{src: pod1.addr(), dst: vip, proto: uint8(ProtoUDP), sport: 33333, dport: 53, payload: []byte("query....."), trailer: []byte("TRAILER!")},
		{src: pod1.addr(), dst: pod2.addr(), proto: uint8(ProtoICMP), icmpType: 8, icmpID: 7, trailer: make([]byte, 18)},
		{src: pod4IP, dst: pod1.addr(), proto: uint8(ProtoTCP), sport: 8080, dport: 40000, tcpFlags: 0x12,
			ipOpts: []byte{1, 1, 1, 0, 7, 3, 4, 0}, tcpOpts: []byte{2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7}},
		{src: fzRouter, dst: pod1.addr(), proto: uint8(ProtoICMP), icmpType: 3, icmpCode: 1,
			payload: quote(ap(pod1.addr(), 40000), ap(pod4IP, 8080), uint8(ProtoTCP))},
		{src: pod1.addr(), dst: pod4IP, proto: uint8(ProtoTCP), sport: 40000, dport: 8080, tcpFlags: 0x10, trailer: make([]byte, 6)},
	}
	var out [][]byte
	for _, s := range base {
		s.ttl, s.window, s.df = 64, 64240, true
		f.setMACs(&s)
		b := s.build()
		for n := 14; n <= len(b); n++ {
			out = append(out, b[:n:n])
		}
	}
	return out
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

// TestFuzzHelpersAgreeWithGopacket checks the fuzzer's own builder and
// checksums against gopacket: the same packets byte for byte, checksums
// accepted, and a flipped byte rejected.
func TestFuzzHelpersAgreeWithGopacket(t *testing.T) {
	tcp := fromPod(pod1, vip, 80)
	udp := tcp
	udp.proto, udp.sport, udp.dport, udp.payload = ProtoUDP, 33333, 53, []byte("query")
	icmp := tcp
	icmp.proto, icmp.icmpType, icmp.icmpID, icmp.payload = ProtoICMP, 8, 7, []byte("ping")
	for _, p := range []pkt{tcp, udp, icmp} {
		want := p.bytes(t)
		s := fzShape{srcMAC: [6]byte(p.srcMAC), dstMAC: [6]byte(p.dstMAC), src: p.src, dst: p.dst, proto: uint8(p.proto),
			sport: p.sport, dport: p.dport, seq: 1000, tcpFlags: 0x02, window: 64240, icmpType: p.icmpType, icmpID: p.icmpID,
			icmpSeq: 1, ttl: p.ttl, ipID: 1, df: true, payload: p.payload}
		got := s.build()
		// gopacket pads frames to Ethernet's 60-byte minimum.
		if pad := len(want) - len(got); len(want) == 60 && pad > 0 && bytes.Equal(want[len(got):], make([]byte, pad)) {
			s.trailer = make([]byte, pad)
			got = s.build()
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: built\n%x\ngopacket\n%x", p.proto, got, want)
		}
		v := fzParse(want)
		has, ok := v.l4Csum(want)
		if !v.valid || !v.l4ok || !v.ipCsumOK(want) || !has || !ok {
			t.Fatalf("%v: view %+v, IPv4 checksum %v, L4 checksum %v %v", p.proto, v, v.ipCsumOK(want), has, ok)
		}
		for _, off := range []int{14 + 8, v.l4off + 4, v.end - 1} {
			bad := append([]byte(nil), want...)
			bad[off] ^= 0x40
			_, l4ok := v.l4Csum(bad)
			if v.ipCsumOK(bad) && l4ok {
				t.Errorf("%v: byte %d flipped, checksums still right", p.proto, off)
			}
			fzFixChecksums(bad)
			if _, l4ok := v.l4Csum(bad); !v.ipCsumOK(bad) || !l4ok {
				t.Errorf("%v: byte %d flipped, checksums not fixed", p.proto, off)
			}
		}
	}
}
