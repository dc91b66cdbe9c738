//go:build vm

package podtoservice

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/tools/journey"
	"github.com/hoplab/hoplab/vmtest/cluster"
)

// torRoutes returns the destinations in the ToR's main routing table.
func torRoutes(ctx context.Context) ([]string, error) {
	rs, err := theLab().Cluster.Node("tor").KernelRoutes(ctx)
	var dsts []string
	for _, r := range rs {
		dsts = append(dsts, r.Dst)
	}
	return dsts, err
}

func replaySYN(ctx context.Context) journey.Packet {
	l := theLab()
	frames, _, err := l.Fixture("tcp-syn-vip")
	Expect(err).NotTo(HaveOccurred())
	rep, err := l.Replay(ctx, frames, cluster.ReplayOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(rep.Packets).To(HaveLen(1))
	return rep.Packets[0]
}

var _ = Describe("BGP: node2 announces 10.1.2.0/24 to the ToR", Label("bgp"), func() {
	It("node2's speaker stops: pod1's SYN for pod4 is LOST at the ToR; it starts again: the SYN is delivered", func(ctx SpecContext) {
		l := theLab()
		node2 := l.Cluster.Node("node2")
		Expect(torRoutes(ctx)).To(ContainElement("10.1.2.0/24"))
		DeferCleanup(func(ctx SpecContext) {
			// Leave the cluster converged whatever happened.
			_ = node2.BGPStart(ctx)
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			Expect(l.Cluster.WaitConverged(cctx)).To(Succeed())
		})

		By("stopping node2's speaker: the ToR withdraws 10.1.2.0/24")
		Expect(node2.BGPStop(ctx)).To(Succeed())
		Eventually(torRoutes).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).ShouldNot(ContainElement("10.1.2.0/24"))

		By("replaying pod1's SYN to 10.224.1.1:80: DNATed on node1, sent to the ToR, lost there")
		j := replaySYN(ctx)
		Expect(j.Verdict).To(Equal(journey.Lost), journey.RenderPacket(j))
		Expect(j).To(HaveHop(journey.ToStack, OnNode("node1"), WithDNAT("10.1.2.40", 8080)))
		Expect(j).To(HaveHop(journey.ToNetdev, OnNode("node1"), WithDevice("bond0"), WithTTL(63)))
		Expect(j).NotTo(HaveHop(journey.Router))
		Expect(j).NotTo(HaveHop(journey.FromNetdev, OnNode("node2")))
		last := j.Hops[len(j.Hops)-1]
		Expect([]string{last.Node, string(last.Point)}).To(Equal([]string{"node1", string(journey.Wire)}),
			"the last hop is node1's uplink toward the ToR:\n%s", journey.RenderPacket(j))

		By("starting node2's speaker again: the route comes back")
		Expect(node2.BGPStart(ctx)).To(Succeed())
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		Expect(l.Cluster.WaitConverged(cctx)).To(Succeed())
		Expect(torRoutes(ctx)).To(ContainElement("10.1.2.0/24"))

		By("replaying the SYN again: delivered to pod4 through the ToR")
		Expect(l.Reset(ctx)).To(Succeed())
		j = replaySYN(ctx)
		Expect(j).To(BeDeliveredTo("pod4"))
		Expect(j).To(HaveHop(journey.Router, OnNode("tor"), WithTTL(62)))
	}, SpecTimeout(150*time.Second))
})
