//go:build vm

package policy

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

const topology = "policy"

var theLab = lab.Suite(topology)

func TestPolicy(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "policy")
}

const policyDenied = "Policy denied"

// syn replays a SYN from pod from to dst and returns its journey; id is the
// IPv4 ID that tells it apart.
func syn(ctx SpecContext, from, dst string, id uint16) journey.Packet {
	j, err := theLab().ReplayOne(ctx, lab.Packet{From: from, To: netip.MustParseAddrPort(dst), Sport: 42000 + id%1000, ID: id})
	Expect(err).NotTo(HaveOccurred())
	return j
}

var _ = Describe("ingress policy at node2's to-container, in the datapath's lookup order", Label("policy"), func() {
	DescribeTable("an admitted SYN crosses the fabric and reaches the pod",
		func(ctx SpecContext, from, dst, pod string, id int) {
			j := syn(ctx, from, dst, uint16(id))
			Expect(j).To(BeDeliveredTo(pod))
			Expect(j).To(HaveHop(journey.ToContainer, OnNode("node2"), WithDevice(theLab().Topology.Pod(pod).LXCName), WithTTL(61), Forwarded()))
		},
		Entry("L3L4: pod1 (frontend) → pod4 (backend) TCP 8080", "pod1", "10.1.2.40:8080", "pod4", 0x5401),
		Entry("L3L4: pod2 (client) → pod4 (backend) TCP 8080, also allowed by pod2's egress policy", "pod2", "10.1.2.40:8080", "pod4", 0x5402),
		Entry("L4-only: pod3 (intruder) → pod5 (metrics) TCP 9090, any identity", "pod3", "10.1.2.50:9090", "pod5", 0x5403),
		Entry("L3-only: pod1 (frontend) → pod6 (db) TCP 5432, any port", "pod1", "10.1.2.60:5432", "pod6", 0x5404),
		Entry("L3-only: pod1 (frontend) → pod6 (db) TCP 6000, any port", "pod1", "10.1.2.60:6000", "pod6", 0x5405),
		Entry("allow-all: pod3 (intruder) → pod7 (public) TCP 80", "pod3", "10.1.2.70:80", "pod7", 0x5406),
	)

	DescribeTable("a SYN no rule admits is dropped at node2's to-container (Policy denied)",
		func(ctx SpecContext, from, dst string, id int) {
			j := syn(ctx, from, dst, uint16(id))
			Expect(j).To(BeDroppedAt(journey.ToContainer, policyDenied))
			Expect(j).To(HaveHop(journey.FromNetdev, OnNode("node2"), Forwarded()))
			Expect(j).NotTo(HaveHop(journey.PodIngress))
		},
		Entry("L3L4: pod1 → pod4 TCP 9999, a port the rule does not name", "pod1", "10.1.2.40:9999", 0x5411),
		Entry("L3L4: pod3 (intruder) → pod4 TCP 8080, an identity the rule does not name", "pod3", "10.1.2.40:8080", 0x5412),
		Entry("L4-only: pod3 → pod5 TCP 9091", "pod3", "10.1.2.50:9091", 0x5413),
		Entry("L3-only: pod3 (intruder) → pod6 TCP 5432", "pod3", "10.1.2.60:5432", 0x5414),
		Entry("default deny: pod1 → pod8 (locked) TCP 8080", "pod1", "10.1.2.80:8080", 0x5415),
	)

	It("egress policy: pod2 (client) → pod6:5432 is dropped at node1's from-container and never leaves node1", func(ctx SpecContext) {
		j := syn(ctx, "pod2", "10.1.2.60:5432", 0x5421)
		Expect(j).To(BeDroppedAt(journey.FromContainer, policyDenied))
		Expect(j).To(HaveHop(journey.FromContainer, OnNode("node1"), WithDevice(theLab().Topology.Pod("pod2").LXCName)))
		Expect(j).NotTo(HaveHop(journey.ToNetdev))
	})

	It("counts the drops: node2's metrics show the Policy denied drops of a denied SYN", func(ctx SpecContext) {
		syn(ctx, "pod1", "10.1.2.80:8080", 0x5431)
		rows, err := theLab().Cluster.Client("node2").Metrics(ctx)
		Expect(err).NotTo(HaveOccurred())
		var denied uint64
		for _, r := range rows {
			if r.Reason == policyDenied {
				denied += r.Packets
			}
		}
		Expect(denied).To(Equal(uint64(1)), "one SYN, one drop; node2 metrics: %+v", rows)
	})

	DescribeTable("real clients: the replies of allowed flows pass, denied flows get no answer",
		func(ctx SpecContext, from, kind, dst string, ok bool) {
			res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: from, Kind: kind, Dst: dst, Timeout: 2 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Outcomes).To(HaveLen(1))
			Expect(res.Outcomes[0].OK).To(Equal(ok), "%s %s → %s: %+v", kind, from, dst, res.Outcomes[0])
		},
		Entry("L3L4: pod1 → pod4:8080 connects", "pod1", nodeapi.ClientTCP, "10.1.2.40:8080", true),
		Entry("L3L4: pod1 → Service 10.224.1.1:80 (pod4:8080) answers", "pod1", nodeapi.ClientHTTP, "10.224.1.1:80", true),
		Entry("L4-only: pod3 → pod5:9090 connects", "pod3", nodeapi.ClientTCP, "10.1.2.50:9090", true),
		Entry("L3-only: pod1 → pod6 UDP 5432 answers", "pod1", nodeapi.ClientUDP, "10.1.2.60:5432", true),
		Entry("allow-all: pod3 → pod7 HTTP 80 answers", "pod3", nodeapi.ClientHTTP, "10.1.2.70:80", true),
		Entry("default deny: pod1 → pod8:8080 gets nothing", "pod1", nodeapi.ClientTCP, "10.1.2.80:8080", false),
		Entry("egress: pod2 → pod6:5432 gets nothing", "pod2", nodeapi.ClientTCP, "10.1.2.60:5432", false),
		Entry("L3L4: pod3 → pod4:8080 gets nothing", "pod3", nodeapi.ClientTCP, "10.1.2.40:8080", false),
	)

	Describe("policy fixtures, each compared hop by hop with its expectation", func() {
		lab.FixtureSpecs(topology, theLab, "policy")
	})
})
