//go:build vm

package podtoservice

import (
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

var _ = Describe("pod1 → Service 10.224.1.1:80, backend pod4:8080 on node2 (the reference journey)", Ordered, ContinueOnFailure, Label("journey"), func() {
	var (
		j      journey.Packet
		events []cluster.Event
		l      *lab.Lab
		// flow is the SYN after DNAT, IPv4 ID included.
		flow journey.FlowKey
		// hits is how many packets each of pod4's policy entries counted
		// during the replay.
		hits map[nodeapi.PolicyRow]uint64
	)
	BeforeAll(func(ctx SpecContext) {
		l = theLab()
		Expect(l.Reset(ctx)).To(Succeed())
		frames, _, err := l.Fixture("tcp-syn-vip")
		Expect(err).NotTo(HaveOccurred())
		var rep journey.Report
		before, err := l.Cluster.Client("node2").PolicyGet(ctx, "pod4")
		Expect(err).NotTo(HaveOccurred())
		evs, err := l.Observe(ctx, func() (err error) {
			rep, err = l.Replay(ctx, frames, cluster.ReplayOptions{})
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		after, err := l.Cluster.Client("node2").PolicyGet(ctx, "pod4")
		Expect(err).NotTo(HaveOccurred())
		hits = policyHits(before, after)
		Expect(rep.Packets).To(HaveLen(1))
		j, events = rep.Packets[0], evs
		k, ok := journey.KeyFromFrame(frames[0].Data)
		Expect(ok).To(BeTrue())
		flow = journey.FlowKey{Proto: k.Proto, Src: k.Src, Dst: netip.MustParseAddrPort("10.1.2.40:8080"), IPID: k.IPID}
		GinkgoWriter.Println(journey.RenderPacket(j))
	})

	It("pod1's eth0 sends the SYN to its lxc MAC: the gateway's neighbour entry points at the veth peer", func() {
		pod1 := l.Topology.Pod("pod1")
		Expect(j).To(HaveHop(journey.PodEgress, OnNode("node1"), WithDevice("pod1:eth0"),
			WithEth(pod1.MAC.String(), pod1.LXCMAC.String()), WithIPs("10.1.1.10", "10.224.1.1"), WithPorts(40000, 80), WithTTL(64)))
	})

	It("from-container on pod1's lxc sees it as sent, addressed to the Service", func() {
		pod1 := l.Topology.Pod("pod1")
		Expect(j).To(HaveHop(journey.FromContainer, OnNode("node1"), WithDevice(pod1.LXCName),
			WithEth(pod1.MAC.String(), pod1.LXCMAC.String()), WithIPs("10.1.1.10", "10.224.1.1"), WithPorts(40000, 80), WithTTL(64), Forwarded()))
	})

	It("from-container rewrites the destination to pod4:8080 and hands it to the stack with TTL and MACs untouched", func() {
		pod1 := l.Topology.Pod("pod1")
		Expect(j).To(HaveHop(journey.ToStack, OnNode("node1"), WithDevice(pod1.LXCName),
			WithDNAT("10.1.2.40", 8080), WithIPs("10.1.1.10", ""), WithEth(pod1.MAC.String(), pod1.LXCMAC.String()), WithTTL(64), Forwarded()))
	})

	It("node1 routes it out of bond0: to-netdev with bond0's MAC → the ToR's MAC, TTL 63", func() {
		n1 := l.Topology.Node("node1")
		Expect(j).To(HaveHop(journey.ToNetdev, OnNode("node1"), WithDevice("bond0"),
			WithEth(n1.BondMAC.String(), n1.TorBondMAC.String()), WithIPs("10.1.1.10", "10.1.2.40"), WithPorts(40000, 8080), WithTTL(63), Forwarded()))
	})

	It("node1's uplink wire carries bond0's MAC → the ToR's MAC, TTL 63", func() {
		n1 := l.Topology.Node("node1")
		Expect(j).To(HaveHop(journey.Wire, OnNode("node1"), WithEth(n1.BondMAC.String(), n1.TorBondMAC.String()), WithTTL(63)))
	})

	It("the ToR routes it by its BGP route to node2: its MAC toward node2 → node2's bond0 MAC, TTL 62", func() {
		n2 := l.Topology.Node("node2")
		Expect(j).To(HaveHop(journey.Router, OnNode("tor"), WithEth(n2.TorBondMAC.String(), n2.BondMAC.String()), WithIPs("10.1.1.10", "10.1.2.40"), WithTTL(62)))
		Expect(j).To(HaveHop(journey.Wire, OnNode("node2"), WithEth(n2.TorBondMAC.String(), n2.BondMAC.String()), WithTTL(62)))
	})

	It("from-netdev on node2's bond0 resolves pod1's security identity from the ipcache", func() {
		n2 := l.Topology.Node("node2")
		Expect(j).To(HaveHop(journey.FromNetdev, OnNode("node2"), WithDevice("bond0"), WithEth(n2.TorBondMAC.String(), n2.BondMAC.String()), WithTTL(62), Forwarded()))
		evs := lab.DatapathEvents(events, "node2", journey.FromNetdev, flow)
		Expect(evs).NotTo(BeEmpty(), "no from-netdev event on node2 for %s", flow)
		Expect(evs[0].SrcIdentity).To(BeNumerically("==", l.Topology.Pod("pod1").Identity), "identity of pod1 (app=frontend) at from-netdev: %s", evs[0].Summary)
	})

	It("to-container, tail-called from from-netdev, admits it (L3L4 rule) and rewrites the MACs to lxc → pod4 with TTL 61", func() {
		pod4 := l.Topology.Pod("pod4")
		Expect(j).To(HaveHop(journey.ToContainer, OnNode("node2"), WithDevice(pod4.LXCName),
			WithEth(pod4.LXCMAC.String(), pod4.MAC.String()), WithIPs("10.1.1.10", "10.1.2.40"), WithPorts(40000, 8080), WithTTL(61), Forwarded()))
		// The SYN hit exactly one of pod4's entries: the L3L4 one for
		// pod1's identity on TCP 8080.
		Expect(hits).To(HaveLen(1), "policy entries the SYN hit: %v", hits)
		for row, n := range hits {
			Expect(row).To(MatchFields(IgnoreExtras, Fields{
				"Direction": Equal("Ingress"), "Level": Equal("L3L4"), "Identity": Equal(uint32(l.Topology.Pod("pod1").Identity)),
				"Port": Equal(uint16(8080)), "Proto": Equal("TCP"), "Deny": BeFalse(),
			}))
			Expect(n).To(Equal(uint64(1)))
		}
	})

	It("nothing runs on pod4's lxc egress hook: the only program that sees the packet on pod4's lxc is the tail-called to-container", func(ctx SpecContext) {
		pod4 := l.Topology.Pod("pod4")
		progs, err := l.Cluster.Client("node2").TCList(ctx)
		Expect(err).NotTo(HaveOccurred())
		var onHooks []string
		for _, p := range progs {
			if p.Device == pod4.LXCName {
				onHooks = append(onHooks, p.Hook+":"+p.Program)
			}
		}
		Expect(onHooks).To(Equal([]string{nodeapi.TCIngress + ":from-container"}), "programs at the tc hooks of %s: %+v", pod4.LXCName, progs)
		var onLXC []string
		for _, e := range events {
			if d := e.Datapath; d != nil && d.Node == "node2" && d.Device == pod4.LXCName {
				if k, ok := journey.KeyFromFrame(d.Frame); ok && k == flow {
					onLXC = append(onLXC, d.Point)
				}
			}
		}
		Expect(onLXC).To(Equal([]string{string(journey.ToContainer)}), "datapath events on %s for %s", pod4.LXCName, flow)
		Expect(lab.DatapathEvents(events, "node2", journey.FromNetdev, flow)).To(HaveLen(1))
	})

	It("pod4's eth0 receives it with TTL 61: every routing node decremented the TTL exactly once", func() {
		pod4 := l.Topology.Pod("pod4")
		Expect(j).To(BeDeliveredTo("pod4"))
		Expect(j).To(HaveHop(journey.PodIngress, OnNode("node2"), WithDevice("pod4:eth0"), WithEth(pod4.LXCMAC.String(), pod4.MAC.String()), WithTTL(61)))
		var ttls []uint8
		for _, h := range j.Hops {
			ttls = append(ttls, h.TTL)
		}
		// pod-egress, from-container, to-stack 64; to-netdev, wire 63;
		// router, wire, from-netdev 62; to-container, pod-ingress 61.
		Expect(ttls).To(Equal([]uint8{64, 64, 64, 63, 63, 62, 62, 62, 61, 61}), journey.RenderPacket(j))
	})

	It("leaves CT entries on both nodes: node1's OUT and SERVICE entries reverse-NAT to 10.224.1.1:80, node2 has the IN entry", func() {
		Expect(j).To(EqualJourney(journey.Packet{CT: []journey.CTEntry{
			{Node: "node1", Tuple: "TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080", RevNAT: "10.224.1.1:80"},
			{Node: "node1", Tuple: "TCP SVC 10.1.1.10:40000 -> 10.224.1.1:80", RevNAT: "10.224.1.1:80"},
			{Node: "node2", Tuple: "TCP IN 10.1.1.10:40000 -> 10.1.2.40:8080"},
		}}, journey.AllowExtraHops()))
	})
})

// policyHits returns, for each policy entry whose packet count grew from
// before to after, by how much (counters zeroed in the key).
func policyHits(before, after []nodeapi.PolicyRow) map[nodeapi.PolicyRow]uint64 {
	key := func(r nodeapi.PolicyRow) nodeapi.PolicyRow { r.Packets, r.Bytes = 0, 0; return r }
	was := map[nodeapi.PolicyRow]uint64{}
	for _, r := range before {
		was[key(r)] = r.Packets
	}
	out := map[nodeapi.PolicyRow]uint64{}
	for _, r := range after {
		if d := r.Packets - was[key(r)]; d > 0 {
			out[key(r)] = d
		}
	}
	return out
}
