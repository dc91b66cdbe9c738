package journey

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/internal/fuzzcorpus"
)

// FuzzMerge checks journey merging on arbitrary replays: injected packets
// and observations of them, of replies and of unrelated packets.
//
// Merge:
//   - is deterministic and leaves its observations alone;
//   - gives one journey per injected packet, with its index;
//   - puts every observation in exactly one journey or in unmatched,
//     except a trace a later drop at the same node and point replaced;
//     unmatched keeps the observations' order and does not depend on it;
//   - puts an observation only in the journey of a packet with its
//     protocol and IPv4 ID, and of one with its whole flow when there is
//     one; leaves unmatched only observations without a key or without a
//     packet with their whole flow;
//   - orders hops node by node (each node's hops together; sending nodes,
//     then routers, then receiving nodes), within a node by point, then by
//     time;
//   - derives the verdict from the hops: DROPPED with the first drop's
//     reason if any hop dropped, else DELIVERED to the first pod-ingress
//     hop's pod, else LOST.
//
// MergeReplies gives Merge's journeys and replies made only of what Merge
// left unmatched, each observation in one reply at most, each answering a
// sent packet whose journey has a hop with the flow of a pod's packet of
// the reply reversed.
//
// The input is a byte-coded replay (see fzReplay); the committed seeds
// (testdata/fuzz/FuzzMerge) are the expected journeys of the fixtures
// (fixtures/data) and of testdata/report.json, their hops as
// observations in reverse order; TestMergeCorpus writes them.
//
//	go test -run '^$' -fuzz '^FuzzMerge$' -fuzztime 30s ./internal/journey
func FuzzMerge(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0x04, 0x08, 7, 1, 0x02, 0x04, 0x08, 7, 2, 0x08, 0, 0x02})
	f.Fuzz(func(t *testing.T, in []byte) {
		sent, seen := fzReplay(in)
		injected := make([]Injected, len(sent))
		for i, s := range sent {
			injected[i] = s.Injected
		}
		obs := make([]Observation, len(seen))
		for i, s := range seen {
			obs[i] = s.Observation
		}
		orig := slices.Clone(obs)
		journeys, unmatched := Merge(injected, obs)
		if !reflect.DeepEqual(obs, orig) {
			t.Fatal("Merge changed its observations")
		}
		j2, u2 := Merge(injected, obs)
		if !reflect.DeepEqual(journeys, j2) || !reflect.DeepEqual(unmatched, u2) {
			t.Fatal("Merge is not deterministic")
		}
		where := checkMerge(t, injected, obs, journeys, unmatched)

		// Which observations are left does not depend on their order.
		rev := slices.Clone(obs)
		slices.Reverse(rev)
		_, ru := Merge(injected, rev)
		if a, b := fzTags(unmatched), fzTags(ru); !reflect.DeepEqual(a, b) {
			t.Fatalf("unmatched %v, with the observations reversed %v", a, b)
		}

		rj, replies := MergeReplies(sent, seen)
		if !reflect.DeepEqual(rj, journeys) {
			t.Fatal("MergeReplies' journeys are not Merge's")
		}
		if replies == nil {
			t.Fatal("replies nil")
		}
		inReply := map[int]int{}
		for k, r := range replies {
			if r.Journey.Index != k || r.InReplyTo < 0 || r.InReplyTo >= len(sent) {
				t.Fatalf("reply %d: index %d, in reply to %d of %d", k, r.Journey.Index, r.InReplyTo, len(sent))
			}
			var group []Observation
			for _, h := range r.Journey.Hops {
				n := fzTag(t, h)
				if where[n] != -1 {
					t.Fatalf("reply %d has observation %d, which Merge placed at %d", k, n, where[n])
				}
				if prev, dup := inReply[n]; dup {
					t.Fatalf("observation %d in replies %d and %d", n, prev, k)
				}
				inReply[n] = k
				group = append(group, obs[n])
			}
			checkJourney(t, obs, r.Journey)
			if len(group) > 0 && !fzAnswers(journeys[r.InReplyTo], group[0].Key, obs, where) {
				t.Fatalf("reply %d (%v) answers packet %d, which has no hop with the flow of a reply's pod-egress sighting reversed", k, group[0].Key, r.InReplyTo)
			}
		}
	})
}

// checkMerge checks Merge's result and returns where each observation
// went: a journey's index, -1 for unmatched, -2 for replaced by a drop.
func checkMerge(t *testing.T, injected []Injected, obs []Observation, journeys []Packet, unmatched []Observation) []int {
	t.Helper()
	if len(journeys) != len(injected) {
		t.Fatalf("%d journeys for %d packets", len(journeys), len(injected))
	}
	where := make([]int, len(obs))
	for i := range where {
		where[i] = -2
	}
	exact := func(k FlowKey) bool {
		return slices.ContainsFunc(injected, func(inj Injected) bool { return inj.Key == k })
	}
	dropHops := 0
	for i, j := range journeys {
		if j.Index != injected[i].Index || j.Hops == nil || j.CT == nil {
			t.Fatalf("journey %d: index %d (want %d), hops %v, ct %v", i, j.Index, injected[i].Index, j.Hops, j.CT)
		}
		k := injected[i].Key
		for _, h := range j.Hops {
			n := fzTag(t, h)
			if where[n] != -2 {
				t.Fatalf("observation %d in journey %d and at %d", n, i, where[n])
			}
			where[n] = i
			o := obs[n]
			want := o.Hop
			want.Point = normal(want.Point)
			if h != want {
				t.Fatalf("journey %d: hop %+v, observation %+v", i, h, o.Hop)
			}
			if !o.HasKey || o.Key.Proto != k.Proto || o.Key.IPID != k.IPID {
				t.Fatalf("observation %d (%v, key %v) in the journey of %v", n, o.Key, o.HasKey, k)
			}
			if exact(o.Key) && (o.Key.Src != k.Src || o.Key.Dst != k.Dst) {
				t.Fatalf("observation %d (%v) in the journey of %v, though a packet has its flow", n, o.Key, k)
			}
			if h.Verdict == Dropped {
				dropHops++
			}
		}
		checkJourney(t, obs, j)
	}
	last := -1
	for _, u := range unmatched {
		n := fzTagOf(u.Hop)
		if n < 0 || n >= len(obs) || n <= last || !reflect.DeepEqual(u, obs[n]) {
			t.Fatalf("unmatched %+v is not the next observation after %d", u, last)
		}
		if where[n] != -2 {
			t.Fatalf("observation %d unmatched and in journey %d", n, where[n])
		}
		if u.HasKey && exact(u.Key) {
			t.Fatalf("observation %d (%v) unmatched, though a packet has its flow", n, u.Key)
		}
		where[n], last = -1, n
	}
	replaced := 0
	for n, w := range where {
		if w != -2 {
			continue
		}
		replaced++
		o := obs[n]
		if o.Hop.Verdict == Dropped || !o.HasKey {
			t.Fatalf("observation %d (%+v) is nowhere", n, o)
		}
		if !slices.ContainsFunc(journeys, func(j Packet) bool {
			return slices.ContainsFunc(j.Hops, func(h Hop) bool {
				return h.Verdict == Dropped && h.Node == o.Hop.Node && h.Point == normal(o.Hop.Point)
			})
		}) {
			t.Fatalf("observation %d (%+v) is nowhere, and no drop at its point replaced it", n, o.Hop)
		}
	}
	if replaced > dropHops {
		t.Fatalf("%d observations replaced by %d drops", replaced, dropHops)
	}
	return where
}

// checkJourney checks the order of j's hops and its verdict.
func checkJourney(t *testing.T, obs []Observation, j Packet) {
	t.Helper()
	group := map[string]int{}
	for _, h := range j.Hops {
		g, seen := group[h.Node]
		if !seen {
			g = 2
		}
		switch {
		case h.Point.egressSide():
			g = 0
		case h.Point == Router:
			g = min(g, 1)
		}
		group[h.Node] = g
	}
	done := map[string]bool{}
	for i := 1; i < len(j.Hops); i++ {
		a, b := j.Hops[i-1], j.Hops[i]
		if a.Node != b.Node {
			if done[b.Node] {
				t.Fatalf("journey %d: the hops of node %q are not together: %v", j.Index, b.Node, j.Hops)
			}
			done[a.Node] = true
			if group[a.Node] > group[b.Node] {
				t.Fatalf("journey %d: node %q (group %d) before %q (group %d)", j.Index, a.Node, group[a.Node], b.Node, group[b.Node])
			}
			continue
		}
		ra, rb := rank(a.Point), rank(b.Point)
		if ra > rb {
			t.Fatalf("journey %d: %s before %s at %s", j.Index, a.Point, b.Point, a.Node)
		}
		if ra == rb && obs[fzTag(t, b)].Time.Before(obs[fzTag(t, a)].Time) {
			t.Fatalf("journey %d: later observation first at %s %s", j.Index, a.Node, a.Point)
		}
	}
	verdict, reason, to := Lost, "", ""
	for _, h := range j.Hops {
		if h.Verdict == Dropped {
			verdict, reason, to = Dropped, h.DropReason, ""
			break
		}
		if h.Point == PodIngress && verdict == Lost {
			verdict, to = Delivered, obs[fzTag(t, h)].Pod
			if to == "" {
				to, _, _ = strings.Cut(h.Device, ":")
			}
		}
	}
	if j.Verdict != verdict || j.DropReason != reason || j.DeliveredTo != to {
		t.Fatalf("journey %d: %s %q %q, its hops say %s %q %q", j.Index, j.Verdict, j.DropReason, j.DeliveredTo, verdict, reason, to)
	}
}

// fzAnswers reports whether p has a hop whose flow is that of a
// pod-egress sighting Merge left unmatched, with key k's protocol and ID,
// reversed.
func fzAnswers(p Packet, k FlowKey, obs []Observation, where []int) bool {
	for n, o := range obs {
		if where[n] != -1 || !o.HasKey || o.Hop.Point != PodEgress || o.Key.Proto != k.Proto || o.Key.IPID != k.IPID {
			continue
		}
		h := o.Hop
		for _, ph := range p.Hops {
			if ph.Proto == h.Proto && ph.IPSrc == h.IPDst && ph.IPDst == h.IPSrc && ph.Sport == h.Dport && ph.Dport == h.Sport {
				return true
			}
		}
	}
	return false
}

// The alphabets of fzReplay, from the fixtures' journeys.
var (
	fzAddrs = []string{"10.1.1.10", "10.1.2.40", "10.224.1.1", "10.1.1.20", "10.1.1.30", "10.224.1.9", "10.1.2.60", "192.0.2.7"}
	fzPorts = []uint16{40000, 8080, 80, 33064, 40010, 53, 5353, 0}
	fzProto = []uint8{6, 17, 1, 6}
	fzNodes = []string{"node1", "node2", "tor", ""}
	// fzPoints: the vocabulary, Cilium's names and one unknown.
	fzPoints  = append(Points(), "to-network", "from-network", "to-lxc", "from-lxc", "to-endpoint", "to-host")
	fzDevices = []string{"", "bond0", "lxc7485d3", "pod1:eth0", "pod4:eth0", "node1-1", "lxc35598c", "eth0"}
	fzSeq     = []uint32{1000, 1001, 2000, 2011}
	fzFlags   = []uint8{tcpSYN, tcpSYN | tcpACK, tcpACK, tcpACK | 0x08, 0x04, 0x04 | tcpACK, tcpFIN | tcpACK, 0}
	fzT0      = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
)

// fzReplay decodes a fuzz input: a packet count (byte 0, mod 5), the sent
// packets (5 bytes each: flow, ports, IPv4 ID, time, TCP), then
// observations to the end (7 bytes each: flow, ports, IPv4 ID, time,
// where, flags, TCP).
//
//	flow:  bits 0-1 protocol (fzProto), 2-4 source, 5-7 destination (fzAddrs)
//	ports: bits 0-2 source, 3-5 destination (fzPorts)
//	time:  0 unknown, else ms after fzT0
//	TCP:   bits 0-2 flags (fzFlags), 3-4 seq, 5-6 ack (fzSeq), 7 10-byte payload
//	where: bits 0-1 node (fzNodes), 2-7 point (fzPoints)
//	flags: bit 0 no key, 1 dropped (at datapath points only), 2-4 device
//	       (fzDevices), 5 pod named
//
// Hop.EthSrc holds "obsN", N the observation's index, so that checks can
// tell which observation a hop is.
func fzReplay(in []byte) ([]Sent, []Sighting) {
	if len(in) == 0 {
		return nil, nil
	}
	n := int(in[0] % 5)
	in = in[1:]
	var sent []Sent
	for i := 0; i < n && len(in) >= 5; i++ {
		k, seg, hasTCP := fzFlow(in[0], in[1], in[2], in[4])
		sent = append(sent, Sent{Injected: Injected{Index: 2*i + 1, Time: fzTime(in[3]), Key: k}, TCP: seg, HasTCP: hasTCP})
		in = in[5:]
	}
	var seen []Sighting
	for len(in) >= 7 {
		k, seg, hasTCP := fzFlow(in[0], in[1], in[2], in[6])
		where, flags := in[4], in[5]
		h := Hop{
			Node: fzNodes[where&3], Point: fzPoints[int(where>>2)%len(fzPoints)], Device: fzDevices[(flags>>2)&7],
			EthSrc: "obs" + strconv.Itoa(len(seen)), EthDst: "0e:00:00:00:00:01",
			IPSrc: k.Src.Addr().String(), IPDst: k.Dst.Addr().String(), TTL: 64, Proto: ProtoName(layers.IPProtocol(k.Proto)),
			Sport: k.Src.Port(), Dport: k.Dst.Port(), Verdict: Forwarded,
		}
		if flags&2 != 0 && fzDatapathPoint(h.Point) {
			h.Verdict, h.DropReason = Dropped, "Policy denied"
		}
		o := Observation{Source: "fuzz", Time: fzTime(in[3]), Hop: h, Key: k, HasKey: flags&1 == 0}
		if flags&0x20 != 0 {
			o.Pod = "pod" + strconv.Itoa(len(seen)%3)
		}
		seen = append(seen, Sighting{Observation: o, TCP: seg, HasTCP: hasTCP})
		in = in[7:]
	}
	return sent, seen
}

func fzFlow(flow, ports, id, tcp byte) (FlowKey, Segment, bool) {
	src := netip.AddrPortFrom(netip.MustParseAddr(fzAddrs[(flow>>2)&7]), fzPorts[ports&7])
	dst := netip.AddrPortFrom(netip.MustParseAddr(fzAddrs[flow>>5]), fzPorts[(ports>>3)&7])
	k := FlowKey{Proto: fzProto[flow&3], Src: src, Dst: dst, IPID: uint16(id)}
	seg := Segment{Src: src, Dst: dst, Flags: fzFlags[tcp&7], Seq: fzSeq[(tcp>>3)&3], Ack: fzSeq[(tcp>>5)&3], Offset: 34}
	if tcp&0x80 != 0 {
		seg.Payload = 10
	}
	return k, seg, k.Proto == 6
}

// fzIndex is v's index in list, the last one's if list lacks it.
func fzIndex[T comparable](list []T, v T) byte {
	if i := slices.Index(list, v); i >= 0 {
		return byte(i)
	}
	return byte(len(list) - 1)
}

func fzTime(b byte) time.Time {
	if b == 0 {
		return time.Time{}
	}
	return fzT0.Add(time.Duration(b) * time.Millisecond)
}

// fzDatapathPoint reports whether the datapath reports drops at p: any
// point but the captures' (pod, wire, router) and the socket hook.
func fzDatapathPoint(p Point) bool {
	switch normal(p) {
	case SockConnect, PodEgress, PodIngress, Wire, Router:
		return false
	}
	return true
}

// fzTagOf is the index of the observation h shows, -1 if none.
func fzTagOf(h Hop) int {
	s, ok := strings.CutPrefix(h.EthSrc, "obs")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

func fzTag(t *testing.T, h Hop) int {
	t.Helper()
	n := fzTagOf(h)
	if n < 0 {
		t.Fatalf("hop %+v is no observation's", h)
	}
	return n
}

func fzTags(obs []Observation) []int {
	var out []int
	for _, o := range obs {
		out = append(out, fzTagOf(o.Hop))
	}
	slices.Sort(out)
	return out
}

// TestMergeCorpus writes testdata/fuzz/FuzzMerge (with
// HOPLAB_FUZZ_CORPUS=1): for each case of each fixture expectation
// (fixtures/data/*.json) and for testdata/report.json, the injected
// packets (the flow of each journey's first hop) and every hop of the
// journeys and replies as an observation, in reverse order, times
// increasing along the path.
func TestMergeCorpus(t *testing.T) {
	type journeys struct {
		Packets []Packet `json:"packets"`
		Replies []struct {
			Journey Packet `json:"journey"`
		} `json:"replies"`
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "fixtures", "data", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	files = append(files, filepath.Join("testdata", "report.json"))
	var seeds []fuzzcorpus.Seed
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			journeys
			Cases []struct {
				journeys
				Topology string `json:"topology"`
			} `json:"cases"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		cases := map[string]journeys{}
		if len(doc.Packets) > 0 {
			cases[name] = doc.journeys
		}
		for _, c := range doc.Cases {
			cases[name+"-"+c.Topology] = c.journeys
		}
		for cname, c := range cases {
			seeds = append(seeds, fuzzcorpus.Seed{Name: cname, Values: []any{fzEncode(c.Packets, c.Replies)}})
		}
	}
	fuzzcorpus.Update(t, "FuzzMerge", seeds)
}

// fzEncode encodes the journeys of a replay as a FuzzMerge input: one sent
// packet per journey, every hop an observation (replies' hops too).
func fzEncode(pkts []Packet, replies []struct {
	Journey Packet `json:"journey"`
}) []byte {
	pindex := func(p uint16) byte { return fzIndex(fzPorts, p) }
	proto := func(s string) byte { return map[string]byte{"tcp": 0, "udp": 1, "icmp": 2}[s] }
	flow := func(h Hop) (byte, byte) {
		return proto(h.Proto) | fzIndex(fzAddrs, h.IPSrc)<<2 | fzIndex(fzAddrs, h.IPDst)<<5, pindex(h.Sport) | pindex(h.Dport)<<3
	}
	out := []byte{byte(len(pkts))}
	for i, p := range pkts {
		if len(p.Hops) == 0 {
			out = append(out, 0, 0, byte(i+1), 0, 0)
			continue
		}
		fl, ports := flow(p.Hops[0])
		out = append(out, fl, ports, byte(i+1), byte(1+10*i), 0)
	}
	type obs struct {
		id, tcp byte
		hop     Hop
	}
	var all []obs
	for i, p := range pkts {
		for _, h := range p.Hops {
			all = append(all, obs{byte(i + 1), 0, h}) // SYN, seq 1000
		}
	}
	for i, r := range replies {
		for _, h := range r.Journey.Hops {
			all = append(all, obs{byte(100 + i), 1 | 2<<3 | 1<<5, h}) // SYN-ACK, seq 2000, ack 1001
		}
	}
	var recs [][]byte
	for k, o := range all {
		fl, ports := flow(o.hop)
		where := fzIndex(fzNodes, o.hop.Node) | fzIndex(fzPoints, o.hop.Point)<<2
		flags := fzIndex(fzDevices, o.hop.Device) << 2
		if o.hop.Verdict == Dropped {
			flags |= 2
		}
		recs = append(recs, []byte{fl, ports, o.id, byte(5 + k), where, flags, o.tcp})
	}
	slices.Reverse(recs)
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}
