package lab

import (
	"slices"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/vmtest/cluster"
)

// RequiresAckRewrite is the fixture capability (fixtures/README.md) of
// rewriting placeholder acknowledgement numbers from the observed SYN-ACK.
// Replay does not have it, so the replies such a fixture expects after its
// first packet are not asserted (the injected packets' journeys are).
const RequiresAckRewrite = "tcp-ack-rewrite"

// ReplayTimeout bounds one fixture replay, replies included.
const ReplayTimeout = 30 * time.Second

// FixtureSpecs declares one spec per fixture that has a case for
// topology: it replays the fixture at the case's injection point and
// compares every packet's journey, and every reply the case lists, with
// EqualJourney. lab returns the suite's running lab (set in BeforeAll or
// BeforeSuite). Call it while building the spec tree.
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
			rep, replies, _, err := l.ReplayWithReplies(ctx, frames, cluster.ReplayOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			gomega.Expect(rep.Packets).To(gomega.HaveLen(len(frames)))
			for i, want := range c.Packets {
				gomega.Expect(rep.Packets[i]).To(journeymatch.EqualJourney(want), "fixture %s, topology %s, packet %d", name, topology, i)
			}
			for _, r := range c.Replies {
				if r.InReplyTo > 0 && slices.Contains(exp.Requires, RequiresAckRewrite) {
					ginkgo.GinkgoWriter.Printf("reply %q to packet %d not asserted: needs %s, which replay does not do\n", r.What, r.InReplyTo, RequiresAckRewrite)
					continue
				}
				got, ok := MatchReply(r.Journey, replies)
				gomega.Expect(ok).To(gomega.BeTrue(), "fixture %s: no reply observed, want %s", name, r.What)
				gomega.Expect(got).To(journeymatch.EqualJourney(r.Journey), "fixture %s: reply %q to packet %d", name, r.What, r.InReplyTo)
			}
		}, ginkgo.SpecTimeout(ReplayTimeout))
	}
}
