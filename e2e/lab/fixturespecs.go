package lab

import (
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/vmtest/cluster"
)

// capabilities maps the fixture capabilities (fixtures/README.md,
// Expectation.Requires) onto the replay options that provide them.
var capabilities = map[string]func(*cluster.ReplayOptions){
	"tcp-ack-rewrite":        func(o *cluster.ReplayOptions) { o.TCPAckRewrite = true },
	"client-rst-suppression": func(o *cluster.ReplayOptions) { o.SuppressRST = true },
}

// ReplayTimeout bounds one fixture replay, replies included.
const ReplayTimeout = 30 * time.Second

// FixtureSpecs declares one spec per fixture that has a case for
// topology: it replays the fixture at the case's injection point with the
// capabilities the fixture requires (ack rewriting, RST suppression) and
// compares every packet's journey, and every reply the case lists (among
// the replies to the same packet, cluster.Reply), with EqualJourney. lab
// returns the suite's running lab (set in BeforeAll or BeforeSuite). Call
// it while building the spec tree.
func FixtureSpecs(topology string, lab func() *Lab, labels ...string) {
	for _, name := range CasesFor(topology) {
		exp, err := fixtures.Load(name)
		text := name
		if err == nil {
			text = name + ": " + exp.Description
		}
		ginkgo.It(text, ginkgo.Label(append([]string{"fixture"}, labels...)...), func(ctx ginkgo.SpecContext) {
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			l := lab()
			frames, c, err := l.Fixture(name)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(frames).To(gomega.HaveLen(len(c.Packets)), "fixture %s: packets in the pcap vs journeys expected", name)
			var opts cluster.ReplayOptions
			for _, r := range exp.Requires {
				set, ok := capabilities[r]
				gomega.Expect(ok).To(gomega.BeTrue(), "fixture %s requires %q, which replay does not provide", name, r)
				set(&opts)
			}
			res, err := l.Trace(ctx, frames, opts)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(res.Report.Packets).To(gomega.HaveLen(len(frames)))
			for i, want := range c.Packets {
				gomega.Expect(res.Report.Packets[i]).To(journeymatch.EqualJourney(want), "fixture %s, topology %s, packet %d", name, topology, i)
			}
			for _, r := range c.Replies {
				var answers []journey.Packet
				for _, got := range res.Replies {
					if got.InReplyTo == r.InReplyTo {
						answers = append(answers, got.Journey)
					}
				}
				got, ok := MatchReply(r.Journey, answers)
				gomega.Expect(ok).To(gomega.BeTrue(), "fixture %s: no reply to packet %d observed, want %s", name, r.InReplyTo, r.What)
				gomega.Expect(got).To(journeymatch.EqualJourney(r.Journey), "fixture %s: reply %q to packet %d", name, r.What, r.InReplyTo)
			}
		}, ginkgo.SpecTimeout(ReplayTimeout))
	}
}
