//go:build vm

package podtoservice

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// torRoutes returns the destinations in the ToR's main routing table.
func torRoutes(ctx context.Context) ([]string, error) {
	rs, err := theLab().Cluster.Client("tor").KernelRoutes(ctx)
	var dsts []string
	for _, r := range rs {
		dsts = append(dsts, r.Dst)
	}
	return dsts, err
}

// torNoRoutes reads the ToR kernel's count of received packets it had no
// route for (IpExt InNoRoutes in /proc/net/netstat).
func torNoRoutes(ctx context.Context) uint64 {
	var b []byte
	err := theLab().Cluster.Fabric().Router().Call(ctx, control.MethodReadFile, control.ReadFile{Path: "/proc/net/netstat"}, &b)
	Expect(err).NotTo(HaveOccurred())
	n, err := netstatCounter(string(b), "IpExt", "InNoRoutes")
	Expect(err).NotTo(HaveOccurred())
	return n
}

// netstatCounter finds one counter in /proc/net/netstat's text, where each
// group is a line of names followed by a line of values.
func netstatCounter(text, group, name string) (uint64, error) {
	lines := strings.Split(text, "\n")
	for i := 0; i+1 < len(lines); i++ {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != group+":" || len(values) != len(names) || values[0] != group+":" {
			continue
		}
		for k, n := range names {
			if n == name {
				return strconv.ParseUint(values[k], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s %s in /proc/net/netstat", group, name)
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
		node2 := l.Cluster.Client("node2")
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
		noRoutes := torNoRoutes(ctx)
		j := replaySYN(ctx)
		// The ToR's kernel counted it as a packet it had no route for.
		Eventually(torNoRoutes).WithContext(ctx).WithTimeout(5*time.Second).WithPolling(100*time.Millisecond).
			Should(BeNumerically(">", noRoutes), "the ToR's IpExt InNoRoutes did not grow: the SYN was not lost for want of a route")
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
