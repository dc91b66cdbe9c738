package journey

import "sort"

// Sent is a packet the harness injected, with the TCP segment of the frame
// it injected, by which replies are attributed to it ([MergeReplies]).
type Sent struct {
	Injected
	// TCP is the injected frame's TCP segment when HasTCP.
	TCP Segment
	// HasTCP reports whether the frame carries a TCP segment (SegmentOf).
	HasTCP bool
}

// NewSent pairs an injected packet with the TCP segment of frame, the frame
// injected.
func NewSent(inj Injected, frame []byte) Sent {
	s, ok := SegmentOf(frame)
	return Sent{Injected: inj, TCP: s, HasTCP: ok}
}

// Sighting is an observation with the TCP segment of the frame observed,
// which tells apart the packets pods send that share an IPv4 ID (kernels
// send SYN-ACKs, RSTs and pure ACKs with ID 0).
type Sighting struct {
	Observation
	// TCP is the observed frame's TCP segment when HasTCP.
	TCP Segment
	// HasTCP reports whether the frame carries a TCP segment (SegmentOf).
	HasTCP bool
}

// NewSighting pairs o with the TCP segment of frame, the frame o was
// decoded from.
func NewSighting(o Observation, frame []byte) Sighting {
	s, ok := SegmentOf(frame)
	return Sighting{Observation: o, TCP: s, HasTCP: ok}
}

// Reply is the journey of a packet a pod sent in response to an injected
// one (a SYN-ACK, an echo reply, a RST).
type Reply struct {
	// InReplyTo is the index of the injected packet answered: one whose
	// flow, at some hop, is the reply's flow reversed, chosen as
	// MergeReplies says.
	InReplyTo int `json:"in_reply_to"`
	// Journey is the reply's journey; its Index is the reply's ordinal.
	Journey Packet `json:"journey"`
}

// MergeReplies is Merge for the packets of a replay, in the order sent, and
// everything seen while they were replayed: it returns one journey per sent
// packet (Merge's) and the journeys of the packets pods sent in response, in
// the order the pods sent them (never nil).
//
// The sightings no sent packet claims make the replies: every pod-egress
// sighting starts one, and the other sightings with the same protocol, IPv4
// ID and TCP sequence fields (which NAT leaves alone) are merged into those
// like observations into injected packets. A reply is kept when its flow,
// reversed, is a sent packet's flow at one of that packet's hops; it answers,
// among those packets, for TCP those whose sequence space it acknowledges
// (preferring segments that take sequence space), else all of them: the
// first not yet answered, else the last.
func MergeReplies(sent []Sent, seen []Sighting) (journeys []Packet, replies []Reply) {
	injected := make([]Injected, len(sent))
	for i, s := range sent {
		injected[i] = s.Injected
	}
	obs := make([]Observation, len(seen))
	for i, s := range seen {
		obs[i] = s.Observation
	}
	journeys, _ = Merge(injected, obs)
	// The sightings Merge left unmatched: those no injected packet claims.
	var unmatched []Sighting
	index := byID(injected)
	for _, s := range seen {
		if claimIn(injected, index, s.Observation) < 0 {
			unmatched = append(unmatched, s)
		}
	}
	return journeys, repliesOf(journeys, sent, unmatched)
}

// seqFields is what a frame says about TCP sequence space (the zero value
// for frames without a TCP segment): the sequence number after the
// segment, whether it takes sequence space, its acknowledgement and flags.
type seqFields struct {
	ok       bool
	end      uint32
	consumes bool
	ack      uint32
	hasACK   bool
	flags    uint8
}

func (s Sighting) seqFields() seqFields {
	if !s.HasTCP {
		return seqFields{}
	}
	return seqFields{ok: true, end: s.TCP.End(), consumes: s.TCP.Len() > 0, ack: s.TCP.Ack, hasACK: s.TCP.ACK(), flags: s.TCP.Flags}
}

// fingerprint tells apart the packets of one replay that share an IPv4 ID:
// their TCP sequence fields, which NAT leaves alone.
type fingerprint struct {
	proto uint8
	id    uint16
	seq   seqFields
}

// repliesOf builds the replies from the sightings no sent packet claimed;
// pkts are the sent packets' journeys (aligned with sent).
func repliesOf(pkts []Packet, sent []Sent, unmatched []Sighting) []Reply {
	type group struct {
		roots []Sighting // the pod-egress sightings: one reply each
		obs   []Observation
	}
	groups := map[fingerprint]*group{}
	var order []fingerprint
	for _, s := range unmatched {
		if !s.HasKey {
			continue
		}
		fp := fingerprint{s.Key.Proto, s.Key.IPID, s.seqFields()}
		g := groups[fp]
		if g == nil {
			g = &group{}
			groups[fp] = g
			order = append(order, fp)
		}
		g.obs = append(g.obs, s.Observation)
		if s.Hop.Point == PodEgress {
			g.roots = append(g.roots, s)
		}
	}
	type reply struct {
		root Sighting
		j    Packet
	}
	var all []reply
	for _, fp := range order {
		g := groups[fp]
		inj := make([]Injected, len(g.roots))
		for k, r := range g.roots {
			inj[k] = Injected{Index: k, Time: r.Time, Key: r.Key}
		}
		js, _ := Merge(inj, g.obs)
		for k, j := range js {
			all = append(all, reply{g.roots[k], j})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].root.Time.Before(all[j].root.Time) })
	out := []Reply{}
	done := map[int]bool{}
	flows := byHopFlow(pkts)
	for _, r := range all {
		to := answered(flows, sent, r.root, done)
		if to < 0 {
			continue
		}
		done[to] = true
		r.j.Index = len(out)
		out = append(out, Reply{InReplyTo: to, Journey: r.j})
	}
	return out
}

// answered returns the index of the sent packet the reply starting with
// root answers, or -1: among the packets with a hop whose flow is root's
// reversed, for TCP those whose sequence space the reply acknowledges (those
// that take sequence space if any, else those that take none), else all of
// them; of these, the first not yet answered (done), else the last. A
// retransmitted SYN's SYN-ACK thus answers the retransmission, not the SYN
// the first SYN-ACK answered.
func answered(flows map[hopFlow][]int, sent []Sent, root Sighting, done map[int]bool) int {
	h := root.Hop
	match := flows[hopFlow{h.Proto, h.IPDst, h.IPSrc, h.Dport, h.Sport}]
	if len(match) == 0 {
		return -1
	}
	if root.HasTCP && root.TCP.ACK() {
		// pkts is aligned with sent (MergeReplies), so i indexes both.
		var spanning, bare []int
		for _, i := range match {
			if s := sent[i]; s.HasTCP && s.TCP.End() == root.TCP.Ack {
				if s.TCP.Len() > 0 {
					spanning = append(spanning, i)
				} else {
					bare = append(bare, i)
				}
			}
		}
		if len(spanning) > 0 {
			return firstOpen(spanning, done)
		}
		if len(bare) > 0 {
			return firstOpen(bare, done)
		}
	}
	return firstOpen(match, done)
}

// hopFlow is a hop's flow: protocol, addresses and ports.
type hopFlow struct {
	proto        string
	src, dst     string
	sport, dport uint16
}

// byHopFlow indexes pkts by the flows of their hops: for each flow, the
// packets with a hop in it, in order, each once. answered looks a reply's
// flow up in it instead of going through every packet's hops.
func byHopFlow(pkts []Packet) map[hopFlow][]int {
	index := map[hopFlow][]int{}
	for i, p := range pkts {
		for _, h := range p.Hops {
			f := hopFlow{h.Proto, h.IPSrc, h.IPDst, h.Sport, h.Dport}
			if l := index[f]; len(l) == 0 || l[len(l)-1] != i {
				index[f] = append(l, i)
			}
		}
	}
	return index
}

// firstOpen returns the first of candidates (not empty) not yet answered
// (done), else the last.
func firstOpen(candidates []int, done map[int]bool) int {
	for _, i := range candidates {
		if !done[i] {
			return i
		}
	}
	return candidates[len(candidates)-1]
}
