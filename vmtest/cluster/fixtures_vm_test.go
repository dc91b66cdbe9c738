//go:build vm

package cluster

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/topologies"
)

// replayCapabilities are the fixture capabilities (Expectation.Requires)
// ReplayOptions provide.
var replayCapabilities = map[string]bool{"tcp-ack-rewrite": true, "client-rst-suppression": true}

// TestFixtures replays every fixture in every topology its expectation
// names (each topology booted once) and compares the journeys of the
// injected packets with the expectation.
func TestFixtures(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	groups, err := fixtures.ByTopology()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		name := g.Topology
		t.Run(name, func(t *testing.T) {
			top, err := topologies.Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			c := StartT(t, Spec{Topology: top, Series: os.Getenv("HOPLAB_SERIES"), ConsoleLine: func(string, string) {}})
			for _, fx := range g.Fixtures {
				t.Run(fx, func(t *testing.T) {
					if err := c.Reset(ctx(t, 10*time.Second)); err != nil {
						t.Fatal(err)
					}
					frames, cs := fixtureFrames(t, top, fx)
					exp, _ := fixtures.Load(fx)
					opts := ReplayOptions{
						TCPAckRewrite: slices.Contains(exp.Requires, "tcp-ack-rewrite"),
						SuppressRST:   slices.Contains(exp.Requires, "client-rst-suppression"),
					}
					begin := time.Now()
					res, err := c.Trace(ctx(t, 30*time.Second), frames, opts)
					if err != nil {
						t.Fatal(err)
					}
					rep := res.Report
					t.Logf("%d packets replayed in %v", len(frames), time.Since(begin).Round(time.Millisecond))
					for i, want := range cs.Packets {
						if d := journey.Diff(want, rep.Packets[i]); !d.Equal() {
							t.Errorf("packet %d:\n%s", i, d)
						}
					}
					for _, r := range res.Replies {
						t.Logf("reply to %d:\n%s", r.InReplyTo, journey.RenderPacket(r.Journey))
					}
					for _, r := range exp.Requires {
						if !replayCapabilities[r] {
							t.Fatalf("fixture requires %q, which Trace lacks", r)
						}
					}
					for _, want := range cs.Replies {
						var tried []string
						found := false
						for _, got := range res.Replies {
							if got.InReplyTo != want.InReplyTo {
								continue
							}
							d := journey.Diff(want.Journey, got.Journey)
							if d.Equal() {
								found = true
								break
							}
							tried = append(tried, d.String())
						}
						if !found {
							t.Errorf("no reply to packet %d like the expected %s; replies to it:\n%s", want.InReplyTo, want.What, strings.Join(tried, "\n"))
						}
					}
				})
			}
		})
	}
}
