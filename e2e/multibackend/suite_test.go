//go:build vm

package multibackend

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

const topology = "multi-backend"

var theLab = lab.Suite(topology)

func TestMultiBackend(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "multi-backend")
}

var backends = map[string]string{"pod2": "10.1.1.20", "pod4": "10.1.2.40", "pod5": "10.1.2.50", "pod6": "10.1.2.60"}

var _ = Describe("pod1 → Service 10.224.1.2:80 with backends pod2 (node1), pod4, pod5, pod6 (node2)", Label("client"), func() {
	It("50 concurrent HTTP GETs from pod1 are all answered, spread over all four backends", func(ctx SpecContext) {
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.2:80", Count: 50, Timeout: 15 * time.Second})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes).To(HaveLen(50))
		per := map[string]int{}
		locals := map[string]bool{}
		for _, o := range res.Outcomes {
			Expect(o.OK).To(BeTrue(), "HTTP GET: %s", o.Error)
			f := strings.Fields(o.Reply) // hoplab <pod> <ip>:<port> from <client>
			Expect(len(f)).To(BeNumerically(">=", 5), "reply %q", o.Reply)
			ip, ok := backends[f[1]]
			Expect(ok).To(BeTrue(), "answered by %s, not a backend: %q", f[1], o.Reply)
			Expect(f[2]).To(Equal(ip+":8080"), o.Reply)
			Expect(f[4]).To(HavePrefix("10.1.1.10:"), o.Reply)
			per[f[1]]++
			locals[o.Local] = true
		}
		GinkgoWriter.Printf("connections per backend: %v\n", per)
		Expect(locals).To(HaveLen(50), "50 distinct client sockets")
		Expect(per).To(HaveLen(4), "every backend answered some of the 50 connections: %v", per)
	}, SpecTimeout(60*time.Second))

	It("each SYN to the Service is DNATed at from-container to one of the backends and delivered to that pod", func(ctx SpecContext) {
		l := theLab()
		seen := map[string]bool{}
		for i := 0; i < 8; i++ {
			j, err := l.ReplayOne(ctx, lab.Packet{From: "pod1", To: netip.MustParseAddrPort("10.224.1.2:80"), Sport: uint16(44000 + i), ID: uint16(0x5600 + i)})
			Expect(err).NotTo(HaveOccurred())
			Expect(j.Verdict).To(Equal(journey.Delivered), journey.RenderPacket(j))
			ip, ok := backends[j.DeliveredTo]
			Expect(ok).To(BeTrue(), "delivered to %q", j.DeliveredTo)
			Expect(j).To(HaveHop(journey.PodIngress, WithDNAT(ip, 8080)))
			// from-container sees the Service address; the hop it hands
			// the packet to (the stack, or the local backend's
			// to-container by tail call) carries the backend's.
			sport := uint16(44000 + i)
			Expect(j).To(HaveHop(journey.FromContainer, OnNode("node1"), WithDevice(l.Topology.Pod("pod1").LXCName),
				WithIPs("10.1.1.10", "10.224.1.2"), WithPorts(sport, 80), Forwarded()))
			next := journey.ToStack
			if j.DeliveredTo == "pod2" {
				next = journey.ToContainer
			}
			Expect(j).To(HaveHop(next, OnNode("node1"), WithIPs("10.1.1.10", ""), WithPorts(sport, 0), WithDNAT(ip, 8080)))
			if j.DeliveredTo == "pod2" {
				// The local backend: delivered by tail call on node1.
				Expect(j).NotTo(HaveHop(journey.ToNetdev))
				Expect(j).To(HaveHop(journey.PodIngress, OnNode("node1"), WithTTL(63)))
			} else {
				Expect(j).To(HaveHop(journey.PodIngress, OnNode("node2"), WithTTL(61)))
			}
			seen[j.DeliveredTo] = true
		}
		GinkgoWriter.Printf("backends reached by 8 SYNs: %v\n", seen)
	})
})
