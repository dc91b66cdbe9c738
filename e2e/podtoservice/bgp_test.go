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

var _ = Describe("BGP: node2 announces 10.1.2.0/24 to the ToR", Ordered, Label("bgp"), func() {
	BeforeAll(func(ctx SpecContext) {
		Expect(torRoutes(ctx)).To(ContainElement("10.1.2.0/24"))
		DeferCleanup(func(ctx SpecContext) {
			// Leave the cluster converged whatever happened.
			_ = theLab().Cluster.Node("node2").BGPStart(ctx)
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			Expect(theLab().Cluster.WaitConverged(cctx)).To(Succeed())
		})
	})

	It("node2's speaker stops: the ToR forgets 10.1.2.0/24 and pod1's SYN for pod4 is LOST after node1's uplink, at the ToR", func(ctx SpecContext) {
		Expect(theLab().Cluster.Node("node2").BGPStop(ctx)).To(Succeed())
		Eventually(torRoutes).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).ShouldNot(ContainElement("10.1.2.0/24"))
		j := replaySYN(ctx)
		Expect(j.Verdict).To(Equal(journey.Lost), journey.RenderPacket(j))
		Expect(j).To(HaveHop(journey.ToStack, OnNode("node1"), WithDNAT("10.1.2.40", 8080)))
		Expect(j).NotTo(HaveHop(journey.Router))
		Expect(j).NotTo(HaveHop(journey.FromNetdev, OnNode("node2")))
		last := j.Hops[len(j.Hops)-1]
		Expect([]string{last.Node, string(last.Point)}).To(Equal([]string{"node1", string(journey.Wire)}), "the last hop is node1's uplink toward the ToR:\n%s", journey.RenderPacket(j))
	}, SpecTimeout(60*time.Second))

	It("node2's speaker starts again: the route comes back and pod1's SYN is delivered to pod4", func(ctx SpecContext) {
		Expect(theLab().Cluster.Node("node2").BGPStart(ctx)).To(Succeed())
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		Expect(theLab().Cluster.WaitConverged(cctx)).To(Succeed())
		Expect(torRoutes(ctx)).To(ContainElement("10.1.2.0/24"))
		Expect(theLab().Reset(ctx)).To(Succeed())
		j := replaySYN(ctx)
		Expect(j).To(BeDeliveredTo("pod4"))
		Expect(j).To(HaveHop(journey.Router, OnNode("tor"), WithTTL(62)))
	}, SpecTimeout(90*time.Second))
})
