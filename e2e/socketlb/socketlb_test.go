//go:build vm

package socketlb

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

var (
	vip     = netip.MustParseAddrPort("10.224.1.1:80")
	backend = netip.MustParseAddrPort("10.1.2.40:8080")
)

var _ = Describe("pod1 connects to Service 10.224.1.1:80: connect4 sends the socket to pod4:8080", Ordered, ContinueOnFailure, Label("socket-lb"), func() {
	var (
		c  lab.Connection
		ct []nodeapi.CTRow
	)
	BeforeAll(func(ctx SpecContext) {
		l := theLab()
		var err error
		c, err = l.Connect(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientTCP, Dst: vip.String(), Sport: 42001})
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Println(journey.RenderPacket(c.First))
		ct, err = l.Cluster.Client("node1").CTList(ctx)
		Expect(err).NotTo(HaveOccurred())
	})

	It("connects, and the socket LB recorded the socket's translation VIP → backend", func() {
		Expect(c.Outcome.OK).To(BeTrue(), "%+v", c.Outcome)
		Expect(c.Sock).NotTo(BeNil())
		Expect(c.Sock.Hook).To(Equal("connect4"))
		Expect(c.Sock.Service).To(Equal(vip))
		Expect(c.Sock.Backend).To(Equal(backend))
		Expect(c.Sock.Cookie).To(Equal(c.Outcome.Cookie))
	})

	It("the journey starts with the sock-connect hop (the VIP the socket asked for); pod1 then sends to the backend itself", func() {
		Expect(c.First.Hops).NotTo(BeEmpty())
		first := c.First.Hops[0]
		Expect(first.Point).To(Equal(journey.SockConnect))
		Expect(first.Node).To(Equal("node1"))
		Expect(first.Device).To(Equal("cgroup/connect4"))
		Expect(first.IPDst + ":" + strconv.Itoa(int(first.Dport))).To(Equal(vip.String()))
		Expect(c.First).To(HaveHop(journey.PodEgress, OnNode("node1"), WithIPs("10.1.1.10", backend.Addr().String()), WithPorts(42001, backend.Port())))
	})

	It("from-container does no DNAT (the packet already goes to pod4:8080) and node1 keeps no service CT entry for the flow", func() {
		Expect(c.First).To(HaveHop(journey.FromContainer, OnNode("node1"), WithIPs("10.1.1.10", backend.Addr().String()), WithPorts(42001, backend.Port()), Forwarded()))
		var tuples []string
		for _, r := range ct {
			tuples = append(tuples, r.Tuple)
		}
		all := strings.Join(tuples, "\n")
		Expect(all).To(ContainSubstring("TCP OUT 10.1.1.10:42001 -> 10.1.2.40:8080"))
		Expect(all).NotTo(ContainSubstring("10.1.1.10:42001 -> 10.224.1.1:80"))
	})

	It("reaches pod4 across the nodes like any pod-to-pod packet (TTL 61)", func() {
		pod4 := theLab().Topology.Pod("pod4")
		Expect(c.First).To(HaveHop(journey.ToContainer, OnNode("node2"), WithDevice(pod4.LXCName), WithTTL(61), Forwarded()))
		Expect(c.First).To(BeDeliveredTo("pod4"))
	})
})

var _ = Describe("socket LB around the journey", Label("socket-lb"), func() {
	It("node1's host reaches the Service too (host-reachable services): connect4 translates it and it leaves bond0 for pod4:8080", func(ctx SpecContext) {
		c, err := theLab().Connect(ctx, nodeapi.ClientAction{Pod: "node1:" + nodeapi.HostClient, Kind: nodeapi.ClientHTTP, Dst: vip.String(), Sport: 42002})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Outcome.OK).To(BeTrue(), "%+v", c.Outcome)
		Expect(c.Outcome.Reply).To(HavePrefix("hoplab pod4 10.1.2.40:8080 from 10.255.1.11:42002"))
		Expect(c.Sock).NotTo(BeNil())
		Expect(c.Sock.Backend).To(Equal(backend))
		Expect(c.First.Hops[0].Point).To(Equal(journey.SockConnect))
		Expect(c.First).To(HaveHop(journey.ToNetdev, OnNode("node1"), WithIPs("10.255.1.11", backend.Addr().String()), WithPorts(42002, backend.Port())))
	})

	It("UDP: pod1's datagram to 10.224.1.53:53 is sent to pod4:5353 by the socket LB and answered", func(ctx SpecContext) {
		c, err := theLab().Connect(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientUDP, Dst: "10.224.1.53:53", Sport: 42003, Payload: []byte("q")})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Outcome.OK).To(BeTrue(), "%+v", c.Outcome)
		Expect(c.Sock).NotTo(BeNil())
		Expect(c.Sock.Proto).To(Equal("UDP"))
		Expect(c.Sock.Backend).To(Equal(netip.MustParseAddrPort("10.1.2.40:5353")))
		Expect(c.First).To(HaveHop(journey.FromContainer, OnNode("node1"), WithIPs("10.1.1.10", "10.1.2.40"), WithPorts(42003, 5353)))
	})

	It("a translated connection to a port pod4's policy does not admit is dropped at node2's to-container (Policy denied)", func(ctx SpecContext) {
		c, err := theLab().Connect(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientTCP, Dst: "10.224.1.9:80", Sport: 42004, Timeout: time.Second})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Outcome.OK).To(BeFalse())
		Expect(c.Sock).NotTo(BeNil())
		Expect(c.Sock.Backend).To(Equal(netip.MustParseAddrPort("10.1.2.40:9999")))
		Expect(c.First.Hops[0].Point).To(Equal(journey.SockConnect))
		Expect(c.First).To(BeDroppedAt(journey.ToContainer, "Policy denied"))
	})

	It("a replayed frame to the VIP has no socket: the tc path still load-balances it (DNAT at from-container)", func(ctx SpecContext) {
		j, err := theLab().ReplayOne(ctx, lab.Packet{From: "pod1", To: vip, Proto: "tcp", Sport: 42005, ID: 0x6001})
		Expect(err).NotTo(HaveOccurred())
		Expect(j).To(HaveHop(journey.FromContainer, OnNode("node1"), WithIPs("10.1.1.10", vip.Addr().String()), WithPorts(42005, vip.Port()), Forwarded()))
		Expect(j).To(HaveHop(journey.ToStack, OnNode("node1"), WithDNAT(backend.Addr().String(), backend.Port()), Forwarded()))
		Expect(j).NotTo(HaveHop(journey.SockConnect))
		Expect(j).To(BeDeliveredTo("pod4"))
	})
})
