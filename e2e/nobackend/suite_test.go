//go:build vm

package nobackend

import (
	"net/netip"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

const topology = "no-backend"

var theLab = lab.Suite(topology)

func TestNoBackend(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "no-backend")
}

var _ = Describe("pod1 → Service 10.224.1.9:80, which has no backend", Label("drops"), func() {
	It("from-container finds the Service but no backend and drops the SYN (Service backend not found): nothing leaves node1", func(ctx SpecContext) {
		j, err := theLab().ReplayOne(ctx, lab.Packet{From: "pod1", To: netip.MustParseAddrPort("10.224.1.9:80"), Sport: 43000, ID: 0x5501})
		Expect(err).NotTo(HaveOccurred())
		Expect(j).To(BeDroppedAt(journey.FromContainer, "Service backend not found"))
		Expect(j).To(HaveHop(journey.FromContainer, OnNode("node1"), WithDevice(theLab().Topology.Pod("pod1").LXCName), WithIPs("10.1.1.10", "10.224.1.9")))
		Expect(j).NotTo(HaveHop(journey.ToStack))
		Expect(j).NotTo(HaveHop(journey.ToNetdev))
	})

	It("a real TCP connect from pod1 to 10.224.1.9:80 gets no answer, and node1 counts the drop", func(ctx SpecContext) {
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientTCP, Dst: "10.224.1.9:80", Timeout: 1500 * time.Millisecond})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes).To(HaveLen(1))
		Expect(res.Outcomes[0].OK).To(BeFalse(), "%+v", res.Outcomes[0])
		rows, err := theLab().Cluster.Client("node1").Metrics(ctx)
		Expect(err).NotTo(HaveOccurred())
		var drops uint64
		for _, r := range rows {
			if r.Reason == "Service backend not found" {
				drops += r.Packets
			}
		}
		Expect(drops).To(BeNumerically(">=", 1), "node1 metrics: %+v", rows)
	})

	It("pod1 still reaches pod4 directly: no policy applies in this topology", func(ctx SpecContext) {
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientPing, Dst: "10.1.2.40"})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes).To(HaveLen(1))
		Expect(res.Outcomes[0].OK).To(BeTrue(), "ping pod4: %s", res.Outcomes[0].Error)
	})

	Describe("no-backend fixtures, each compared hop by hop with its expectation", func() {
		lab.FixtureSpecs(topology, theLab, "drops")
	})
})
