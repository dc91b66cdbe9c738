//go:build vm

package podtoservice

import (
	"net/netip"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
	"github.com/hoplab/hoplab/vmtest/wire"
)

// slaveTap counts, per uplink of node1, the frames node1 sends for pod1's
// connections to pod4:8080, by client port, with the time of each.
type slaveTap struct {
	mu     sync.Mutex
	wires  map[string]int // wire name → slave index
	frames []slaveFrame
}

type slaveFrame struct {
	slave   int
	sport   uint16
	t       time.Time
	dropped bool
}

func newSlaveTap() *slaveTap {
	f := theLab().Cluster.Fabric()
	s := &slaveTap{wires: map[string]int{}}
	for j := 0; j < 2; j++ {
		s.wires[f.Link("node1", j).Name()] = j
	}
	return s
}

func (s *slaveTap) tap(w *wire.Wire, fr wire.Frame) {
	j, ok := s.wires[w.Name()]
	if !ok || fr.From != wire.A || fr.Injected {
		return
	}
	k, ok := journey.KeyFromFrame(fr.Data)
	if !ok || k.Src.Addr() != netip.MustParseAddr("10.1.1.10") || k.Dst != netip.MustParseAddrPort("10.1.2.40:8080") {
		return
	}
	s.mu.Lock()
	s.frames = append(s.frames, slaveFrame{slave: j, sport: k.Src.Port(), t: fr.Time, dropped: fr.Dropped})
	s.mu.Unlock()
}

func (s *slaveTap) snapshot() []slaveFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slaveFrame(nil), s.frames...)
}

var _ = Describe("node1's bond0: two NICs in balance-xor (layer3+4) toward the ToR", Ordered, Label("bond"), func() {
	It("spreads pod1's connections to the Service over both slaves", func(ctx SpecContext) {
		s := newSlaveTap()
		remove := theLab().Cluster.Fabric().Tap(s.tap)
		defer remove()
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80", Count: 20, Timeout: 10 * time.Second})
		Expect(err).NotTo(HaveOccurred())
		for _, o := range res.Outcomes {
			Expect(o.OK).To(BeTrue(), "HTTP GET: %s", o.Error)
		}
		perSlave := map[int]map[uint16]bool{0: {}, 1: {}}
		for _, f := range s.snapshot() {
			perSlave[f.slave][f.sport] = true
		}
		GinkgoWriter.Printf("connections per slave: %d on slave 0, %d on slave 1\n", len(perSlave[0]), len(perSlave[1]))
		Expect(perSlave[0]).NotTo(BeEmpty(), "no connection left node1 on slave 0")
		Expect(perSlave[1]).NotTo(BeEmpty(), "no connection left node1 on slave 1")
		for p := range perSlave[0] {
			Expect(perSlave[1]).NotTo(HaveKey(p), "connection from port %d used both slaves without a failover", p)
		}
	})

	It("keeps connections that are in flight when one slave fails: they continue on the other", func(ctx SpecContext) {
		l := theLab()
		f := l.Cluster.Fabric()
		s := newSlaveTap()
		remove := f.Tap(s.tap)
		defer remove()

		var (
			res    nodeapi.ClientResult
			runErr error
			done   = make(chan struct{})
		)
		go func() {
			defer GinkgoRecover()
			defer close(done)
			res, runErr = l.Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80", Count: 50, Timeout: 15 * time.Second})
		}()
		// Cut the slave that carries the first connection once it has
		// sent a few frames.
		var cut int
		Eventually(func() int { return len(s.snapshot()) }).WithTimeout(10 * time.Second).WithPolling(5 * time.Millisecond).Should(BeNumerically(">=", 1))
		cut = s.snapshot()[0].slave
		cutAt := time.Now()
		Expect(f.SetLink(ctx, "node1", cut, false)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Expect(f.SetLink(ctx, "node1", cut, true)).To(Succeed())
		})
		<-done
		Expect(runErr).NotTo(HaveOccurred())
		Expect(res.Outcomes).To(HaveLen(50))
		for _, o := range res.Outcomes {
			Expect(o.OK).To(BeTrue(), "HTTP GET across the failover: %s", o.Error)
		}
		// A connection that used the cut slave before the cut and the
		// other slave after it moved mid-connection.
		before, after := map[uint16]bool{}, map[uint16]bool{}
		var forwardedOnCut int
		for _, fr := range s.snapshot() {
			switch {
			case fr.slave == cut && fr.t.Before(cutAt):
				before[fr.sport] = true
			case fr.slave != cut && fr.t.After(cutAt):
				after[fr.sport] = true
			case fr.slave == cut && fr.t.After(cutAt.Add(500*time.Millisecond)) && !fr.dropped:
				forwardedOnCut++
			}
		}
		var moved []uint16
		for p := range before {
			if after[p] {
				moved = append(moved, p)
			}
		}
		GinkgoWriter.Printf("slave %d cut: %d connections used it before, %d moved to the other slave\n", cut, len(before), len(moved))
		Expect(moved).NotTo(BeEmpty(), "no connection continued on the other slave after the cut")
		Expect(forwardedOnCut).To(BeZero(), "frames still forwarded on the cut slave")
	}, SpecTimeout(60*time.Second))

	It("uses both slaves again once the failed one is back", func(ctx SpecContext) {
		s := newSlaveTap()
		remove := theLab().Cluster.Fabric().Tap(s.tap)
		defer remove()
		Eventually(func(g Gomega) {
			res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80", Count: 20, Timeout: 10 * time.Second})
			g.Expect(err).NotTo(HaveOccurred())
			for _, o := range res.Outcomes {
				g.Expect(o.OK).To(BeTrue(), "HTTP GET: %s", o.Error)
			}
			used := map[int]bool{}
			for _, f := range s.snapshot() {
				if !f.dropped {
					used[f.slave] = true
				}
			}
			g.Expect(used).To(HaveLen(2))
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
	}, SpecTimeout(60*time.Second))
})
