//go:build vm

package nodeport

import (
	"net/netip"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

const (
	laptop   = "192.0.2.50"
	node1IP  = "10.255.1.11"
	pod4Addr = "10.1.2.40"
)

var _ = Describe("laptop → node1:30080, backend pod4:8080 on node2 (DNAT + SNAT at node1)", Ordered, ContinueOnFailure, Label("nodeport"), func() {
	var (
		c   lab.Connection
		nat []nodeapi.NATRow
		ct  []nodeapi.CTRow
		// natPort is the source port node1 gave the connection.
		natPort uint16
	)
	BeforeAll(func(ctx SpecContext) {
		l := theLab()
		var err error
		c, err = l.Connect(ctx, nodeapi.ClientAction{Pod: "laptop", Kind: nodeapi.ClientTCP, Dst: node1IP + ":30080", Sport: 40000})
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Println(journey.RenderPacket(c.First))
		GinkgoWriter.Println(journey.RenderPacket(c.Reply))
		nat, err = l.Cluster.Client("node1").NATList(ctx)
		Expect(err).NotTo(HaveOccurred())
		ct, err = l.Cluster.Client("node1").CTList(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, r := range nat {
			GinkgoWriter.Println(r.Entry)
			if r.Direction == "OUT" && r.Src.String() == laptop+":40000" {
				natPort = r.Xlate.Port()
			}
		}
	})

	It("a real TCP handshake from laptop succeeds", func() {
		Expect(c.Outcome.OK).To(BeTrue(), "%+v", c.Outcome)
	})

	It("laptop sends to node1:30080; the ToR routes it to node1 (TTL 63)", func() {
		l := theLab()
		e, n1 := l.Topology.External("laptop"), l.Topology.Node("node1")
		Expect(c.First.Hops).NotTo(BeEmpty())
		Expect(c.First.Hops[0]).To(MatchFields(e, "laptop", journey.External, laptop, node1IP, 64))
		Expect(c.First).To(HaveHop(journey.Router, OnNode("tor"), WithIPs(laptop, node1IP), WithTTL(63)))
		Expect(c.First).To(HaveHop(journey.Wire, OnNode("node1"), WithIPs(laptop, node1IP), WithEth(n1.TorBondMAC.String(), n1.BondMAC.String()), WithTTL(63)))
	})

	It("node1's from-netdev DNATs to pod4:8080 (the client's address kept), and its to-netdev SNATs to node1's address after the kernel routed it (TTL 62)", func() {
		l := theLab()
		n1 := l.Topology.Node("node1")
		Expect(c.First).To(HaveHop(journey.FromNetdev, OnNode("node1"), WithDevice("bond0"), WithIPs(laptop, ""), WithDNAT(pod4Addr, 8080), WithPorts(40000, 0), WithTTL(63), Forwarded()))
		Expect(natPort).NotTo(BeZero(), "no OUT NAT entry for %s:40000", laptop)
		Expect(c.First).To(HaveHop(journey.ToNetdev, OnNode("node1"), WithDevice("bond0"), WithIPs(node1IP, pod4Addr), WithPorts(natPort, 8080),
			WithEth(n1.BondMAC.String(), n1.TorBondMAC.String()), WithTTL(62), Forwarded()))
	})

	It("node2 receives it from node1's address (reserved:remote-node), admitted by fromEntities remote-node, and pod4 gets it with TTL 60", func() {
		l := theLab()
		pod4 := l.Topology.Pod("pod4")
		Expect(c.First).To(HaveHop(journey.FromNetdev, OnNode("node2"), WithIPs(node1IP, pod4Addr), WithTTL(61), Forwarded()))
		Expect(c.First).To(HaveHop(journey.ToContainer, OnNode("node2"), WithDevice(pod4.LXCName), WithEth(pod4.LXCMAC.String(), pod4.MAC.String()), WithTTL(60), Forwarded()))
		Expect(c.First).To(BeDeliveredTo("pod4"))
		evs := lab.DatapathEvents(c.Events, "node2", journey.ToContainer, journey.FlowKey{Proto: 6,
			Src: netip.AddrPortFrom(netip.MustParseAddr(node1IP), natPort), Dst: netip.MustParseAddrPort(pod4Addr + ":8080")})
		Expect(evs).NotTo(BeEmpty())
		Expect(evs[0].SrcIdentity).To(Equal(uint32(topologies.IdentityRemoteNode)))
	})

	It("the reply returns through node1, which restores node1:30080 → laptop:40000 before it leaves, and reaches laptop", func() {
		Expect(c.Reply).To(HaveHop(journey.PodEgress, OnNode("node2"), WithIPs(pod4Addr, node1IP), WithPorts(8080, natPort)))
		Expect(c.Reply).To(HaveHop(journey.FromNetdev, OnNode("node1"), Forwarded()))
		Expect(c.Reply).To(HaveHop(journey.ToNetdev, OnNode("node1"), WithIPs(node1IP, laptop), WithPorts(30080, 40000), Forwarded()))
		Expect(c.Reply).To(BeDeliveredToExternal("laptop"))
		Expect(c.Reply).To(HaveHop(journey.External, OnNode("laptop"), WithIPs(node1IP, laptop), WithPorts(30080, 40000)))
	})

	It("node1 holds both NAT entries (`hoplab nat list`) and the NodePort's CT entries with rev-NAT to node1:30080", func() {
		var entries []string
		for _, r := range nat {
			entries = append(entries, r.Entry)
		}
		all := strings.Join(entries, "\n")
		Expect(all).To(ContainSubstring("TCP OUT " + laptop + ":40000 -> " + pod4Addr + ":8080 XLATE_SRC " + node1IP + ":"))
		Expect(all).To(MatchRegexp(`TCP IN ` + pod4Addr + `:8080 -> ` + node1IP + `:\d+ XLATE_DST ` + laptop + `:40000`))
		var tuples []string
		for _, r := range ct {
			tuples = append(tuples, r.Tuple+" "+r.RevNATAddr)
		}
		Expect(strings.Join(tuples, "\n")).To(ContainSubstring(node1IP+":30080"), strings.Join(tuples, "\n"))
	})
})

// MatchFields matches a hop's node, point, addresses and TTL, and that it
// carries the external host's MAC.
func MatchFields(e *topologies.External, node string, point journey.Point, src, dst string, ttl uint8) OmegaMatcher {
	return And(
		HaveField("Node", node), HaveField("Point", point), HaveField("IPSrc", src), HaveField("IPDst", dst),
		HaveField("TTL", ttl), HaveField("EthSrc", e.MAC.String()), HaveField("EthDst", e.RouterMAC.String()))
}

var _ = Describe("NodePort around the journey", Label("nodeport"), func() {
	It("laptop → node1:30081, backend pod2 on node1: DNAT at from-netdev and local delivery, no SNAT; pod2 sees the client (reserved:world)", func(ctx SpecContext) {
		l := theLab()
		pod2 := l.Topology.Pod("pod2")
		var j journey.Packet
		events, err := l.Observe(ctx, func() (err error) {
			j, err = l.ReplayOne(ctx, lab.Packet{From: "laptop", To: netip.MustParseAddrPort(node1IP + ":30081"), Proto: "tcp", Sport: 40010, ID: 0x5101})
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Println(journey.RenderPacket(j))
		Expect(j).To(HaveHop(journey.FromNetdev, OnNode("node1"), WithDNAT("10.1.1.20", 8080), WithIPs(laptop, ""), WithTTL(63), Forwarded()))
		Expect(j).To(HaveHop(journey.ToContainer, OnNode("node1"), WithDevice(pod2.LXCName), WithIPs(laptop, "10.1.1.20"), WithTTL(62), Forwarded()))
		Expect(j).To(BeDeliveredTo("pod2"))
		Expect(j).NotTo(HaveHop(journey.ToNetdev))
		evs := lab.DatapathEvents(events, "node1", journey.ToContainer, journey.FlowKey{Proto: 6,
			Src: netip.MustParseAddrPort(laptop + ":40010"), Dst: netip.MustParseAddrPort("10.1.1.20:8080")})
		Expect(evs).NotTo(BeEmpty())
		Expect(evs[0].SrcIdentity).To(Equal(uint32(topologies.IdentityWorld)))
	})

	It("real HTTP through both NodePorts: pod4 answers node1's address (SNAT), pod2 the client's (no SNAT)", func(ctx SpecContext) {
		l := theLab()
		res, err := l.Cluster.Run(ctx, nodeapi.ClientAction{Pod: "laptop", Kind: nodeapi.ClientHTTP, Dst: node1IP + ":30080"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes[0].OK).To(BeTrue(), "%+v", res.Outcomes[0])
		Expect(res.Outcomes[0].Reply).To(HavePrefix("hoplab pod4 " + pod4Addr + ":8080 from " + node1IP + ":"))
		res, err = l.Cluster.Run(ctx, nodeapi.ClientAction{Pod: "laptop", Kind: nodeapi.ClientHTTP, Dst: node1IP + ":30081"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes[0].OK).To(BeTrue(), "%+v", res.Outcomes[0])
		Expect(res.Outcomes[0].Reply).To(HavePrefix("hoplab pod2 10.1.1.20:8080 from " + laptop + ":"))
	})

	It("laptop → node1:30082 (backend pod4:9999, admitted to nobody) is dropped at node2's to-container (Policy denied), the drop naming reserved:remote-node", func(ctx SpecContext) {
		l := theLab()
		var j journey.Packet
		events, err := l.Observe(ctx, func() (err error) {
			j, err = l.ReplayOne(ctx, lab.Packet{From: "laptop", To: netip.MustParseAddrPort(node1IP + ":30082"), Proto: "tcp", Sport: 40020, ID: 0x5102})
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(j).To(BeDroppedAt(journey.ToContainer, "Policy denied"))
		Expect(j).To(HaveHop(journey.FromNetdev, OnNode("node1"), WithDNAT(pod4Addr, 9999)))
		var drops []nodeapi.DatapathEvent
		for _, e := range lab.DatapathEvents(events, "node2", journey.ToContainer, journey.FlowKey{}) {
			if e.Type == nodeapi.EventDrop {
				drops = append(drops, e)
			}
		}
		Expect(drops).To(HaveLen(1))
		Expect(drops[0].SrcIdentity).To(Equal(uint32(topologies.IdentityRemoteNode)))
	})

	It("`lb list` on node1 shows the NodePort frontends on node1's address", func(ctx SpecContext) {
		rows, err := theLab().Cluster.Client("node1").LBList(ctx)
		Expect(err).NotTo(HaveOccurred())
		var np []string
		for _, r := range rows {
			if r.NodePort {
				np = append(np, r.Frontend)
			}
		}
		Expect(np).To(ConsistOf(node1IP+":30080/TCP", node1IP+":30081/TCP", node1IP+":30082/TCP"))
	})

	It("a port no NodePort uses is left to node1's own stack, which refuses the connection", func(ctx SpecContext) {
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "laptop", Kind: nodeapi.ClientTCP, Dst: node1IP + ":30099", Timeout: 2 * time.Second})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes[0].OK).To(BeFalse(), "%+v", res.Outcomes[0])
		Expect(res.Outcomes[0].Error).To(ContainSubstring("connection refused"))
	})
})
