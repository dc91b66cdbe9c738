package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/agent/workload"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Connection is what a real client action did: its outcome, the journey
// of its first packet, and everything the cluster observed meanwhile.
type Connection struct {
	// Outcome is the client's result.
	Outcome workload.Outcome
	// First is the journey of the first packet the client sent (a TCP SYN
	// or the UDP request), merged from the same observations as a replayed
	// packet's.
	First journey.Packet
	// Reply is the journey of the first packet that reached the client's
	// source port (a SYN-ACK, the UDP answer); empty when none did.
	Reply journey.Packet
	// Events are the cluster's observations while the action ran.
	Events []cluster.Event
	// Sock is the socket LB's translation of the client's socket (nil
	// without socket LB); First then starts with its sock-connect hop.
	Sock *nodeapi.SockXlate
}

// sockObservation is the sock-connect hop of a translated socket: the
// packet as the application addressed it (the Service VIP:port), on the
// client's node, just before the first packet seen. The next hop shows the
// backend the socket was sent to instead.
func (l *Lab) sockObservation(a nodeapi.ClientAction, x *nodeapi.SockXlate, first journey.Observation) journey.Observation {
	node := first.Hop.Node
	if p := l.Topology.Pod(a.Pod); p != nil {
		node = p.Node
	} else if n, _, ok := strings.Cut(a.Pod, ":"); ok {
		node = n
	}
	h := journey.Hop{Node: node, Point: journey.SockConnect, Device: "cgroup/" + x.Hook,
		IPDst: x.Service.Addr().String(), TTL: first.Hop.TTL,
		Proto: strings.ToLower(x.Proto), Sport: a.Sport, Dport: x.Service.Port(), Verdict: journey.Forwarded}
	if first.Key.Src.IsValid() {
		h.IPSrc = first.Key.Src.Addr().String()
	}
	if x.NoBackend {
		h.Verdict, h.DropReason = journey.Dropped, "Service backend not found"
	}
	return journey.Observation{Source: "sock:" + node, Time: first.Time.Add(-time.Nanosecond), Hop: h, Key: first.Key, HasKey: true}
}

// Connect runs one real client action (a.Count must be 0 or 1, a.Sport
// set) while observing the cluster, and returns its outcome and the
// journey of its first packet: the earliest observation from source port
// a.Sport of the action's protocol identifies the packet (its IPv4 ID
// tells it from retransmissions), and journey.Merge assembles its hops.
// A socket-level LB rewrites the destination before any packet exists, so
// the packet is found by its source port only.
func (l *Lab) Connect(ctx context.Context, a nodeapi.ClientAction) (Connection, error) {
	var c Connection
	if a.Sport == 0 || a.Count > 1 {
		return c, fmt.Errorf("lab: connect: want one action with a source port, got count %d sport %d", a.Count, a.Sport)
	}
	proto := uint8(6)
	if a.Kind == nodeapi.ClientUDP {
		proto = 17
	}
	events, err := l.Observe(ctx, func() error {
		res, err := l.Cluster.Run(ctx, a)
		if err != nil {
			return err
		}
		if len(res.Outcomes) != 1 {
			return fmt.Errorf("lab: connect: %d outcomes", len(res.Outcomes))
		}
		c.Outcome = res.Outcomes[0]
		if len(res.Sock) == 1 {
			c.Sock = res.Sock[0]
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	c.Events = events
	var obs []journey.Observation
	for _, e := range events {
		obs = append(obs, e.Observations()...)
	}
	first := -1
	for i, o := range obs {
		if o.HasKey && o.Key.Proto == proto && o.Key.Src.Port() == a.Sport && (first < 0 || o.Time.Before(obs[first].Time)) {
			first = i
		}
	}
	if first < 0 && c.Sock != nil {
		// The socket LB refused the call: no packet ever existed.
		o := l.sockObservation(a, c.Sock, journey.Observation{Key: journey.FlowKey{Proto: proto}})
		js, _ := journey.Merge([]journey.Injected{{Key: o.Key}}, []journey.Observation{o})
		c.First = js[0]
		return c, nil
	}
	if first < 0 {
		return c, fmt.Errorf("lab: connect: no packet from source port %d observed (outcome %+v)", a.Sport, c.Outcome)
	}
	if c.Sock != nil {
		obs = append(obs, l.sockObservation(a, c.Sock, obs[first]))
	}
	// The first packet and the reply may share an IPv4 ID (Linux sends
	// SYN and SYN-ACK with ID 0), so each journey keeps only the
	// observations of its own direction (direction).
	first0 := obs[first]
	forward := direction(obs, first0)
	js, _ := journey.Merge([]journey.Injected{{Time: first0.Time, Key: first0.Key}}, forward)
	c.First = js[0]
	// The reply: the first observation addressed to the client's port
	// after the first packet, in the other direction; its IPv4 ID names
	// it along the way back.
	fwd := map[addrs]bool{}
	for _, o := range forward {
		fwd[addrsOf(o)] = true
	}
	reply := -1
	for i, o := range obs {
		if o.HasKey && o.Key.Proto == proto && o.Key.Dst.Port() == a.Sport && o.Time.After(first0.Time) && !fwd[addrsOf(o)] &&
			(reply < 0 || o.Time.Before(obs[reply].Time)) {
			reply = i
		}
	}
	if reply >= 0 {
		js, _ := journey.Merge([]journey.Injected{{Time: obs[reply].Time, Key: obs[reply].Key}}, direction(obs, obs[reply]))
		c.Reply = js[0]
		l.save("connect-reply", c.Reply)
	}
	l.save("connect", c.First)
	return c, nil
}

// addrs is an observation's source and destination (address and port).
type addrs struct{ src, dst netip.AddrPort }

func addrsOf(o journey.Observation) addrs { return addrs{o.Key.Src, o.Key.Dst} }

// direction returns the observations of from's direction: starting from
// from's addresses, every observation (of its protocol) that shares its
// source with a source, or its destination with a destination, already
// found. NAT rewrites one side at a time, so the chain follows the packet
// through DNAT, SNAT and their reversals, while the other direction (whose
// addresses swap roles) stays out.
func direction(obs []journey.Observation, from journey.Observation) []journey.Observation {
	srcs := map[netip.AddrPort]bool{from.Key.Src: true}
	dsts := map[netip.AddrPort]bool{from.Key.Dst: true}
	in := make([]bool, len(obs))
	for grew := true; grew; {
		grew = false
		for i, o := range obs {
			if in[i] || !o.HasKey || o.Key.Proto != from.Key.Proto || !(srcs[o.Key.Src] || dsts[o.Key.Dst]) {
				continue
			}
			in[i], grew = true, true
			srcs[o.Key.Src], dsts[o.Key.Dst] = true, true
		}
	}
	var out []journey.Observation
	for i, o := range obs {
		if in[i] || !o.HasKey {
			out = append(out, o)
		}
	}
	return out
}
