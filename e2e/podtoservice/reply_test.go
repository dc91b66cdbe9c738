//go:build vm

package podtoservice

import (
	"net/netip"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

var _ = Describe("pod4 → pod1, the reply path of pod1 → Service 10.224.1.1:80", Label("reply"), func() {
	It("pod4's SYN-ACK takes the mirror path and is reverse-NATed to 10.224.1.1:80 at pod1's to-container", func(ctx SpecContext) {
		l := theLab()
		frames, _, err := l.Fixture("tcp-syn-vip")
		Expect(err).NotTo(HaveOccurred())
		res, err := l.Trace(ctx, frames, cluster.ReplayOptions{})
		Expect(err).NotTo(HaveOccurred())
		var synack journey.Packet
		for _, r := range res.Replies {
			if len(r.Journey.Hops) > 0 && r.Journey.Hops[0].Device == "pod4:eth0" {
				synack = r.Journey
				break
			}
		}
		Expect(synack.Hops).NotTo(BeEmpty(), "no packet from pod4 among %d replies", len(res.Replies))
		pod1, n1, n2 := l.Topology.Pod("pod1"), l.Topology.Node("node1"), l.Topology.Node("node2")
		Expect(synack).To(HaveHop(journey.PodEgress, OnNode("node2"), WithIPs("10.1.2.40", "10.1.1.10"), WithPorts(8080, 40000), WithTTL(64)))
		Expect(synack).To(HaveHop(journey.ToNetdev, OnNode("node2"), WithDevice("bond0"), WithEth(n2.BondMAC.String(), n2.TorBondMAC.String()), WithTTL(63)))
		Expect(synack).To(HaveHop(journey.Router, OnNode("tor"), WithEth(n1.TorBondMAC.String(), n1.BondMAC.String()), WithTTL(62)))
		Expect(synack).To(HaveHop(journey.FromNetdev, OnNode("node1"), WithDevice("bond0"), WithIPs("10.1.2.40", "10.1.1.10"), WithPorts(8080, 40000), WithTTL(62)))
		Expect(synack).To(HaveHop(journey.ToContainer, OnNode("node1"), WithDevice(pod1.LXCName),
			WithIPs("10.224.1.1", "10.1.1.10"), WithPorts(80, 40000), WithEth(pod1.LXCMAC.String(), pod1.MAC.String()), WithTTL(61), Forwarded()))
		Expect(synack).To(HaveHop(journey.PodIngress, OnNode("node1"), WithIPs("10.224.1.1", "10.1.1.10"), WithPorts(80, 40000), WithTTL(61)))
		Expect(synack).To(BeDeliveredTo("pod1"))
	})

	Describe("a real HTTP GET from pod1 to 10.224.1.1:80, through connection tracking", Ordered, ContinueOnFailure, func() {
		var (
			l       *lab.Lab
			events  []cluster.Event
			local   netip.AddrPort // pod1's socket
			out, in journey.FlowKey
			ct1     nodeapi.CTRow // node1's OUT entry
			ct2     nodeapi.CTRow // node2's IN entry
		)
		BeforeAll(func(ctx SpecContext) {
			l = theLab()
			Expect(l.Reset(ctx)).To(Succeed())
			var res nodeapi.ClientResult
			var err error
			events, err = l.Observe(ctx, func() error {
				res, err = l.Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80"})
				return err
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Outcomes).To(HaveLen(1))
			Expect(res.Outcomes[0].OK).To(BeTrue(), "HTTP GET: %s", res.Outcomes[0].Error)
			local = netip.MustParseAddrPort(res.Outcomes[0].Local)
			out = journey.FlowKey{Proto: 6, Src: local, Dst: netip.MustParseAddrPort("10.1.2.40:8080")}
			in = journey.FlowKey{Proto: 6, Src: netip.MustParseAddrPort("10.224.1.1:80"), Dst: local}
			tuple := "TCP OUT " + local.String() + " -> 10.1.2.40:8080"
			rows, err := l.Cluster.Client("node1").CTList(ctx)
			Expect(err).NotTo(HaveOccurred())
			for _, r := range rows {
				if r.Tuple == tuple {
					ct1 = r
				}
			}
			Expect(ct1.Tuple).To(Equal(tuple), "node1 CT: %v", rows)
			tuple = "TCP IN " + local.String() + " -> 10.1.2.40:8080"
			rows, err = l.Cluster.Client("node2").CTList(ctx)
			Expect(err).NotTo(HaveOccurred())
			for _, r := range rows {
				if r.Tuple == tuple {
					ct2 = r
				}
			}
			Expect(ct2.Tuple).To(Equal(tuple), "node2 CT: %v", rows)
		})

		It("node1's datapath sees the SYN as a NEW connection and pod1's later packets as ESTABLISHED", func() {
			evs := lab.DatapathEvents(events, "node1", journey.ToStack, out)
			Expect(len(evs)).To(BeNumerically(">=", 3), "pod1's packets of %s at node1's to-stack", out)
			var states []string
			for _, e := range evs {
				states = append(states, e.CTState)
			}
			Expect(states[0]).To(Equal(nodeapi.CTNew), "first packet: %s", evs[0].Summary)
			for i, s := range states[1:] {
				Expect(s).To(Equal(nodeapi.CTEstablished), "packet %d: %s", i+1, evs[i+1].Summary)
			}
		})

		It("pod4's answers are REPLY at node1's to-container, reverse-NATed to 10.224.1.1:80", func() {
			evs := lab.DatapathEvents(events, "node1", journey.ToContainer, in)
			Expect(len(evs)).To(BeNumerically(">=", 2), "pod4's packets of %s at node1's to-container", in)
			for _, e := range evs {
				Expect(e.CTState).To(Equal(nodeapi.CTReply), e.Summary)
			}
		})

		It("node1's CT entry counts every packet pod1 sent (tx) and received (rx) and reverse-NATs to 10.224.1.1:80", func() {
			sent := lab.PodFrames(events, "pod1", nodeapi.PodEgress, journey.FlowKey{Proto: 6, Src: local, Dst: netip.MustParseAddrPort("10.224.1.1:80")})
			got := lab.PodFrames(events, "pod1", nodeapi.PodIngress, in)
			Expect(sent).NotTo(BeEmpty())
			Expect(got).NotTo(BeEmpty())
			Expect(ct1.TxPackets).To(BeNumerically("==", len(sent)), "%+v", ct1)
			Expect(ct1.RxPackets).To(BeNumerically("==", len(got)), "%+v", ct1)
			Expect(ct1.RevNATAddr).To(Equal("10.224.1.1:80"))
			Expect(ct1.SrcIdentity).To(BeNumerically("==", l.Topology.Pod("pod1").Identity))
			Expect(strings.Fields(ct1.Flags)).To(ContainElement("seen_non_syn"), "%+v", ct1)
		})

		It("node2's CT entry counts the packets pod4 received (tx) and answered (rx)", func() {
			got := lab.PodFrames(events, "pod4", nodeapi.PodIngress, out)
			sent := lab.PodFrames(events, "pod4", nodeapi.PodEgress, journey.FlowKey{Proto: 6, Src: out.Dst, Dst: local})
			Expect(got).NotTo(BeEmpty())
			Expect(sent).NotTo(BeEmpty())
			Expect(ct2.TxPackets).To(BeNumerically("==", len(got)), "%+v", ct2)
			Expect(ct2.RxPackets).To(BeNumerically("==", len(sent)), "%+v", ct2)
			Expect(ct2.SrcIdentity).To(BeNumerically("==", l.Topology.Pod("pod1").Identity))
		})
	})
})
