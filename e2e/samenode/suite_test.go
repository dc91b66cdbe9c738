//go:build vm

package samenode

import (
	"net/netip"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

const topology = "same-node"

var theLab = lab.Suite(topology)

func TestSameNode(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "same-node")
}

// expectLocal asserts that j stayed on node1: no hop on bond0, the wire,
// the ToR or node2.
func expectLocal(j journey.Packet) {
	for _, h := range j.Hops {
		Expect(h.Node).To(Equal("node1"), "hop %s on %s:\n%s", h.Point, h.Node, journey.RenderPacket(j))
		Expect(h.Device).NotTo(Equal("bond0"), journey.RenderPacket(j))
	}
	Expect(j).NotTo(HaveHop(journey.ToNetdev))
	Expect(j).NotTo(HaveHop(journey.Wire))
}

var _ = Describe("same-node traffic on node1", Label("same-node"), func() {
	It("pod1 → pod2 10.1.1.20:8080: from-container delivers it by tail call to pod2's to-container, TTL 64 arrives as 63, no bond0 hop", func(ctx SpecContext) {
		l := theLab()
		pod1, pod2 := l.Topology.Pod("pod1"), l.Topology.Pod("pod2")
		j, err := l.ReplayOne(ctx, lab.Packet{From: "pod1", To: netip.MustParseAddrPort("10.1.1.20:8080"), Sport: 41000, ID: 0x5301})
		Expect(err).NotTo(HaveOccurred())
		Expect(j).To(BeDeliveredTo("pod2"))
		Expect(j).To(EqualJourney(journey.Packet{Verdict: journey.Delivered, DeliveredTo: "pod2", Hops: []journey.Hop{
			{Node: "node1", Point: journey.PodEgress, Device: "pod1:eth0", EthSrc: pod1.MAC.String(), EthDst: pod1.LXCMAC.String(), IPSrc: "10.1.1.10", IPDst: "10.1.1.20", TTL: 64, Sport: 41000, Dport: 8080},
			{Node: "node1", Point: journey.FromContainer, Device: pod1.LXCName, IPDst: "10.1.1.20", TTL: 64, Verdict: journey.Forwarded},
			{Node: "node1", Point: journey.ToContainer, Device: pod2.LXCName, EthSrc: pod2.LXCMAC.String(), EthDst: pod2.MAC.String(), IPDst: "10.1.1.20", TTL: 63, Dport: 8080, Verdict: journey.Forwarded},
			{Node: "node1", Point: journey.PodIngress, Device: "pod2:eth0", EthSrc: pod2.LXCMAC.String(), EthDst: pod2.MAC.String(), TTL: 63},
		}}))
		expectLocal(j)
	})

	It("pod1 → Service 10.224.1.1:80: from-container rewrites the destination to pod2:8080 and delivers it locally with TTL 63", func(ctx SpecContext) {
		l := theLab()
		pod2 := l.Topology.Pod("pod2")
		j, err := l.ReplayOne(ctx, lab.Packet{From: "pod1", To: netip.MustParseAddrPort("10.224.1.1:80"), Sport: 41001, ID: 0x5302})
		Expect(err).NotTo(HaveOccurred())
		Expect(j).To(BeDeliveredTo("pod2"))
		Expect(j).To(HaveHop(journey.FromContainer, OnNode("node1"), WithIPs("10.1.1.10", "10.224.1.1"), WithPorts(41001, 80), WithTTL(64)))
		Expect(j).To(HaveHop(journey.ToContainer, OnNode("node1"), WithDevice(pod2.LXCName), WithDNAT("10.1.1.20", 8080), WithEth(pod2.LXCMAC.String(), pod2.MAC.String()), WithTTL(63), Forwarded()))
		Expect(j).To(HaveHop(journey.PodIngress, OnNode("node1"), WithDevice("pod2:eth0"), WithDNAT("10.1.1.20", 8080), WithTTL(63)))
		Expect(j.CT).To(ContainElement(HaveField("Tuple", "TCP OUT 10.1.1.10:41001 -> 10.1.1.20:8080")))
		expectLocal(j)
	})

	It("real clients in pod1 reach pod2 directly and through both Services (TCP 10.224.1.1:80, UDP 10.224.1.1:53)", func(ctx SpecContext) {
		l := theLab()
		for _, a := range []nodeapi.ClientAction{
			{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.1.1.20:8080"},
			{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80"},
			{Pod: "pod1", Kind: nodeapi.ClientUDP, Dst: "10.224.1.1:53"},
		} {
			res, err := l.Cluster.Run(ctx, a)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Outcomes).To(HaveLen(1))
			Expect(res.Outcomes[0].OK).To(BeTrue(), "%s %s: %s", a.Kind, a.Dst, res.Outcomes[0].Error)
			// The UDP echo answers from its unconnected socket: its local
			// address reads 0.0.0.0.
			Expect(res.Outcomes[0].Reply).To(HavePrefix("hoplab pod2 "), "%s %s", a.Kind, a.Dst)
			Expect(res.Outcomes[0].Reply).To(ContainSubstring(" from 10.1.1.10:"), "%s %s", a.Kind, a.Dst)
		}
	})

	Describe("same-node fixtures, each compared hop by hop with its expectation", func() {
		lab.FixtureSpecs(topology, theLab, "same-node")
	})
})
