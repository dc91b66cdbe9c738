//go:build vm

package tunnel

import (
	"net/netip"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// vxlanPort is Cilium's VXLAN port, which the datapath uses.
const vxlanPort = 8472

var _ = Describe("pod1 → Service 10.224.1.1:80, backend pod4:8080 on node2, in VXLAN between the nodes", Ordered, ContinueOnFailure, Label("tunnel"), func() {
	var (
		j journey.Packet
		l *lab.Lab
		// outer is what every hop between the nodes sees outside: node1's
		// uplink address to node2's, UDP to 8472, pod1's identity as VNI.
		outer journey.Outer
	)
	BeforeAll(func(ctx SpecContext) {
		l = theLab()
		Expect(l.Reset(ctx)).To(Succeed())
		var err error
		j, err = l.ReplayOne(ctx, lab.Packet{From: "pod1", To: netip.MustParseAddrPort("10.224.1.1:80"), Proto: "tcp", Sport: 40000, ID: 0x7001})
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Println(journey.RenderPacket(j))
		outer = journey.Outer{IPSrc: "10.255.1.11", IPDst: "10.255.2.12", Proto: "udp", Dport: vxlanPort, VNI: uint32(l.Topology.Pod("pod1").Identity)}
	})

	It("from-container DNATs to pod4:8080 and hands the packet to cilium_vxlan (to-overlay) with TTL and MACs untouched", func() {
		pod1 := l.Topology.Pod("pod1")
		Expect(j).To(HaveHop(journey.FromContainer, OnNode("node1"), WithDevice(pod1.LXCName), WithIPs("10.1.1.10", "10.224.1.1"), WithPorts(40000, 80), Forwarded()))
		Expect(j).To(HaveHop(journey.ToOverlay, OnNode("node1"), WithDevice("cilium_vxlan"),
			WithDNAT("10.1.2.40", 8080), WithIPs("10.1.1.10", ""), WithEth(pod1.MAC.String(), pod1.LXCMAC.String()), WithTTL(64), Forwarded()))
		Expect(j).NotTo(HaveHop(journey.ToStack))
	})

	It("node1's bond0 sends it encapsulated: outer bond0 MAC → ToR MAC, 10.255.1.11 → 10.255.2.12, UDP 8472, VNI = pod1's identity; the inner packet keeps TTL 64", func() {
		n1 := l.Topology.Node("node1")
		o := outer
		o.EthSrc, o.EthDst, o.TTL = n1.BondMAC.String(), n1.TorBondMAC.String(), 64
		Expect(j).To(HaveHop(journey.ToNetdev, OnNode("node1"), WithDevice("bond0"), WithOuter(o), WithIPs("10.1.1.10", "10.1.2.40"), WithPorts(40000, 8080), WithTTL(64), Forwarded()))
		Expect(j).To(HaveHop(journey.Wire, OnNode("node1"), WithOuter(o), WithIPs("10.1.1.10", "10.1.2.40"), WithTTL(64)))
	})

	It("the ToR routes the outer packet between node addresses: outer TTL 63, ToR MAC → node2's bond0 MAC", func() {
		n2 := l.Topology.Node("node2")
		o := outer
		o.EthSrc, o.EthDst, o.TTL = n2.TorBondMAC.String(), n2.BondMAC.String(), 63
		Expect(j).To(HaveHop(journey.Router, OnNode("tor"), WithOuter(journey.Outer{IPDst: "10.255.2.12", TTL: 63, Dport: vxlanPort})))
		Expect(j).To(HaveHop(journey.Wire, OnNode("node2"), WithOuter(o), WithTTL(64)))
		Expect(j).To(HaveHop(journey.FromNetdev, OnNode("node2"), WithDevice("bond0"), WithOuter(o), WithIPs("10.1.1.10", "10.1.2.40"), Forwarded()))
	})

	It("node2's from-overlay takes the decapsulated packet, and to-container delivers it to pod4 with TTL 63 and the pod's MACs", func() {
		pod4 := l.Topology.Pod("pod4")
		Expect(j).To(HaveHop(journey.FromOverlay, OnNode("node2"), WithDevice("cilium_vxlan"), WithIPs("10.1.1.10", "10.1.2.40"), WithPorts(40000, 8080), WithTTL(64), Forwarded()))
		Expect(j).To(HaveHop(journey.ToContainer, OnNode("node2"), WithDevice(pod4.LXCName), WithEth(pod4.LXCMAC.String(), pod4.MAC.String()), WithTTL(63), Forwarded()))
		Expect(j).To(BeDeliveredTo("pod4"))
		for _, h := range j.Hops {
			if h.Point == journey.FromOverlay || h.Point == journey.ToContainer || h.Node == "node2" && h.Point == journey.PodIngress {
				Expect(h.Outer).To(BeNil(), "hop %s %s carries outer headers", h.Node, h.Point)
			}
		}
	})

	It("CT: node1 holds the service and OUT entries (rev-NAT to the VIP), node2 the IN entry", func() {
		var tuples []string
		for _, c := range j.CT {
			tuples = append(tuples, c.Node+" "+c.Tuple+" "+c.RevNAT)
		}
		Expect(tuples).To(ContainElements(
			"node1 TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080 10.224.1.1:80",
			"node1 TCP SVC 10.1.1.10:40000 -> 10.224.1.1:80 10.224.1.1:80",
			"node2 TCP IN 10.1.1.10:40000 -> 10.1.2.40:8080 "), strings.Join(tuples, "\n"))
	})
})

var _ = Describe("tunnel mode around the journey", Label("tunnel"), func() {
	It("a real HTTP GET from pod1 to the Service is answered by pod4 through the tunnel", func(ctx SpecContext) {
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes).To(HaveLen(1))
		Expect(res.Outcomes[0].OK).To(BeTrue(), "%+v", res.Outcomes[0])
		Expect(res.Outcomes[0].Reply).To(HavePrefix("hoplab pod4 10.1.2.40:8080 from 10.1.1.10:"))
	})

	It("pod1's SYN to pod4:9999 crosses the tunnel and is dropped at node2's to-container (Policy denied), decided on the identity in the VNI", func(ctx SpecContext) {
		l := theLab()
		var j journey.Packet
		events, err := l.Observe(ctx, func() (err error) {
			j, err = l.ReplayOne(ctx, lab.Packet{From: "pod1", To: netip.MustParseAddrPort("10.1.2.40:9999"), Proto: "tcp", Sport: 40001, ID: 0x7002})
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(j).To(BeDroppedAt(journey.ToContainer, "Policy denied"))
		flow := journey.FlowKey{Proto: 6, Src: netip.MustParseAddrPort("10.1.1.10:40001"), Dst: netip.MustParseAddrPort("10.1.2.40:9999"), IPID: 0x7002}
		drops := lab.DatapathEvents(events, "node2", journey.ToContainer, flow)
		Expect(drops).To(HaveLen(1))
		Expect(drops[0].Reason).To(Equal("Policy denied"))
		Expect(drops[0].SrcIdentity).To(Equal(uint32(l.Topology.Pod("pod1").Identity)))
		Expect(drops[0].DstIdentity).To(Equal(uint32(l.Topology.Pod("pod4").Identity)))
		Expect(j).To(HaveHop(journey.FromOverlay, OnNode("node2"), WithPorts(40001, 9999)))
		Expect(j).To(HaveHop(journey.Wire, OnNode("node2"), WithOuter(journey.Outer{Dport: vxlanPort, VNI: uint32(l.Topology.Pod("pod1").Identity)})))
	})

	It("BGP: every session is up and the ToR learns no PodCIDR (pod traffic travels between node addresses)", func(ctx SpecContext) {
		l := theLab()
		Expect(l.Cluster.WaitConverged(ctx)).To(Succeed())
		routes, err := l.Cluster.Client("tor").KernelRoutes(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, r := range routes {
			Expect(r.Protocol).NotTo(Equal("bgp"), "the ToR has a BGP route %+v", r)
			for _, n := range l.Topology.Nodes {
				Expect(r.Dst).NotTo(Equal(n.PodCIDR.String()))
			}
		}
	})
})
