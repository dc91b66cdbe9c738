//go:build vm

package host

import (
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Reserved identities, as Cilium numbers them.
var (
	hostID       = uint32(topologies.IdentityHost)
	remoteNodeID = uint32(topologies.IdentityRemoteNode)
)

// node1Addrs are the addresses node1's host may send from (its uplink
// address and its router IP): the ipcache maps both to reserved:host on
// node1 and reserved:remote-node elsewhere.
func node1Addrs(l *lab.Lab) []string {
	n := l.Topology.Node("node1")
	return []string{n.Uplink.Address.Addr().String(), n.RouterIP.String()}
}

var _ = Describe("node1's host → pod4:8080 on node2", Ordered, ContinueOnFailure, Label("host"), func() {
	var c lab.Connection
	BeforeAll(func(ctx SpecContext) {
		var err error
		c, err = theLab().Connect(ctx, nodeapi.ClientAction{Pod: "node1:" + nodeapi.HostClient, Kind: nodeapi.ClientTCP, Dst: "10.1.2.40:8080", Sport: 41001})
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Println(journey.RenderPacket(c.First))
	})

	It("connects: a real TCP handshake from node1's host namespace", func() {
		Expect(c.Outcome.OK).To(BeTrue(), "%+v", c.Outcome)
	})

	It("leaves node1 through to-netdev from node1's uplink address as reserved:host, TTL 64 (the host sends, nothing routes it yet)", func() {
		l := theLab()
		n1 := l.Topology.Node("node1")
		Expect(c.First).To(HaveHop(journey.ToNetdev, OnNode("node1"), WithDevice("bond0"), WithIPs(n1.Uplink.Address.Addr().String(), "10.1.2.40"),
			WithPorts(41001, 8080), WithEth(n1.BondMAC.String(), n1.TorBondMAC.String()), WithTTL(64), Forwarded()))
		flow := journey.FlowKey{Proto: 6, Src: netip.AddrPortFrom(n1.Uplink.Address.Addr(), 41001), Dst: netip.MustParseAddrPort("10.1.2.40:8080")}
		out := lab.DatapathEvents(c.Events, "node1", journey.ToNetdev, flow)
		Expect(out).NotTo(BeEmpty())
		Expect(out[0].SrcIdentity).To(Equal(hostID))
	})

	It("arrives at node2 as reserved:remote-node (6), admitted by fromEntities remote-node, and is delivered to pod4 with TTL 62", func() {
		l := theLab()
		n1, pod4 := l.Topology.Node("node1"), l.Topology.Pod("pod4")
		Expect(c.First).To(HaveHop(journey.Router, OnNode("tor"), WithTTL(63)))
		Expect(c.First).To(HaveHop(journey.FromNetdev, OnNode("node2"), WithDevice("bond0"), WithTTL(63), Forwarded()))
		Expect(c.First).To(HaveHop(journey.ToContainer, OnNode("node2"), WithDevice(pod4.LXCName), WithEth(pod4.LXCMAC.String(), pod4.MAC.String()), WithTTL(62), Forwarded()))
		Expect(c.First).To(BeDeliveredTo("pod4"))
		flow := journey.FlowKey{Proto: 6, Src: netip.AddrPortFrom(n1.Uplink.Address.Addr(), 41001), Dst: netip.MustParseAddrPort("10.1.2.40:8080")}
		for _, point := range []journey.Point{journey.FromNetdev, journey.ToContainer} {
			evs := lab.DatapathEvents(c.Events, "node2", point, flow)
			Expect(evs).NotTo(BeEmpty(), "no %s event", point)
			Expect(evs[0].SrcIdentity).To(Equal(remoteNodeID), "%s", point)
		}
	})
})

var _ = Describe("host traffic around the journey", Label("host"), func() {
	It("node1's host → pod4:9999 is dropped at node2's to-container (Policy denied), the drop naming reserved:remote-node", func(ctx SpecContext) {
		l := theLab()
		c, err := l.Connect(ctx, nodeapi.ClientAction{Pod: "node1:" + nodeapi.HostClient, Kind: nodeapi.ClientTCP, Dst: "10.1.2.40:9999", Sport: 41002, Timeout: time.Second})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Outcome.OK).To(BeFalse())
		Expect(c.First).To(BeDroppedAt(journey.ToContainer, "Policy denied"))
		var drops []nodeapi.DatapathEvent
		for _, e := range lab.DatapathEvents(c.Events, "node2", journey.ToContainer, journey.FlowKey{}) {
			if e.Type == nodeapi.EventDrop {
				drops = append(drops, e)
			}
		}
		Expect(drops).NotTo(BeEmpty())
		Expect(drops[0].Reason).To(Equal("Policy denied"))
		Expect(drops[0].SrcIdentity).To(Equal(remoteNodeID))
		Expect(drops[0].DstIdentity).To(Equal(uint32(l.Topology.Pod("pod4").Identity)))
	})

	It("node1's host → pod2:8080 on node1: a local pod is always reachable from its node's host (Cilium's allow-localhost); pod2's reply, admitted by its egress rule toEntities host, goes to the stack toward reserved:host", func(ctx SpecContext) {
		l := theLab()
		c, err := l.Connect(ctx, nodeapi.ClientAction{Pod: "node1:" + nodeapi.HostClient, Kind: nodeapi.ClientTCP, Dst: "10.1.1.20:8080", Sport: 41003})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Outcome.OK).To(BeTrue(), "%+v", c.Outcome)
		Expect(c.First).To(BeDeliveredTo("pod2"))
		Expect(c.First).To(HaveHop(journey.PodIngress, OnNode("node1"), WithPorts(41003, 8080), WithTTL(64)))
		Expect(c.First).NotTo(HaveHop(journey.ToNetdev))
		src, _, _ := netipCut(c.Outcome.Local)
		Expect(node1Addrs(l)).To(ContainElement(src))
		reply := lab.DatapathEvents(c.Events, "node1", journey.ToStack, journey.FlowKey{Proto: 6,
			Src: netip.MustParseAddrPort("10.1.1.20:8080"), Dst: netip.MustParseAddrPort(c.Outcome.Local)})
		Expect(reply).NotTo(BeEmpty())
		Expect(reply[0].DstIdentity).To(Equal(hostID))
	})

	It("pod2's egress policy admits the host entity only: a ping to node1's address passes, a ping to pod4 is dropped at from-container (Policy denied)", func(ctx SpecContext) {
		l := theLab()
		res, err := l.Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod2", Kind: nodeapi.ClientPing, Dst: l.Topology.Node("node1").Uplink.Address.Addr().String()})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes[0].OK).To(BeTrue(), "%+v", res.Outcomes[0])
		var drops []nodeapi.DatapathEvent
		events, err := l.Observe(ctx, func() error {
			res, err = l.Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod2", Kind: nodeapi.ClientPing, Dst: "10.1.2.40", Timeout: time.Second})
			return err
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes[0].OK).To(BeFalse())
		for _, e := range lab.DatapathEvents(events, "node1", journey.FromContainer, journey.FlowKey{}) {
			if e.Type == nodeapi.EventDrop {
				drops = append(drops, e)
			}
		}
		Expect(drops).NotTo(BeEmpty())
		Expect(drops[0].Reason).To(Equal("Policy denied"))
		Expect(drops[0].SrcIdentity).To(Equal(uint32(l.Topology.Pod("pod2").Identity)))
	})

	It("without socket-level LB a Service VIP is not host-reachable (Cilium's host-reachable services are the socket LB's): node1's host gets no answer from 10.224.1.1:80", func(ctx SpecContext) {
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "node1:" + nodeapi.HostClient, Kind: nodeapi.ClientTCP, Dst: "10.224.1.1:80", Timeout: time.Second})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes[0].OK).To(BeFalse(), "%+v", res.Outcomes[0])
	})
})

// netipCut splits "ip:port".
func netipCut(s string) (ip string, port uint16, err error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", 0, err
	}
	return ap.Addr().String(), ap.Port(), nil
}
