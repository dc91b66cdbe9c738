//go:build vm

package podtoservice

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/cluster"
)

var _ = Describe("drops on the way to Service 10.224.1.1:80", Label("drops"), func() {
	It("pod1's SYN with TTL 1 is dropped at node1's from-container (TTL exceeded) and never reaches bond0", func(ctx SpecContext) {
		l := theLab()
		frames, _, err := l.Fixture("ttl-1")
		Expect(err).NotTo(HaveOccurred())
		rep, err := l.Replay(ctx, frames, cluster.ReplayOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Packets).To(HaveLen(1))
		j := rep.Packets[0]
		Expect(j).To(BeDroppedAt(journey.FromContainer, "TTL exceeded"))
		Expect(j).To(HaveHop(journey.PodEgress, OnNode("node1"), WithTTL(1)))
		Expect(j).NotTo(HaveHop(journey.ToNetdev))
		Expect(j).NotTo(HaveHop(journey.Router))
	})

	It("pod1's ping to pod4 is dropped at node2's to-container (Policy denied): pod4 admits TCP 8080 only", func(ctx SpecContext) {
		l := theLab()
		frames, _, err := l.Fixture("icmp-echo")
		Expect(err).NotTo(HaveOccurred())
		rep, err := l.Replay(ctx, frames, cluster.ReplayOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Packets).To(HaveLen(1))
		Expect(rep.Packets[0]).To(BeDroppedAt(journey.ToContainer, "Policy denied"))
		Expect(rep.Packets[0]).To(HaveHop(journey.FromNetdev, OnNode("node2"), WithTTL(62)))
	})
})
