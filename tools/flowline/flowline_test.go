package flowline

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/tools/replayreport"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenFixtures are the fixtures whose flow lines are golden; fixtures
// added later do not break this test until they are added here (and the
// golden file regenerated with -update).
var goldenFixtures = []string{"captured-http-get", "icmp-echo", "no-backend", "policy-denied-egress", "policy-denied-identity",
	"policy-denied-port", "tcp-handshake", "tcp-syn-vip", "ttl-1", "udp-service", "nodeport-syn", "nodeport-local", "nodeport-policy-denied"}

// datapathPoints are the points the datapath emits events at.
var datapathPoints = map[journey.Point]bool{
	journey.FromContainer: true, journey.ToStack: true, journey.ToNetdev: true,
	journey.FromNetdev: true, journey.ToContainer: true, journey.ToOverlay: true, journey.FromOverlay: true,
}

// TestFlowLinesGolden turns every datapath hop of every fixture's expected
// journeys into the event the datapath would emit (the fixture's frame with
// the hop's headers) and renders it as a flow line.
func TestFlowLinesGolden(t *testing.T) {
	base := time.Date(2026, 11, 23, 10, 31, 15, 123e6, time.UTC)
	var b strings.Builder
	n := 0
	for _, name := range goldenFixtures {
		exp, err := fixtures.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := fixtures.Packets(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range exp.Cases {
			top, err := topologies.Builtin(c.Topology)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "# %s on %s\n", name, c.Topology)
			for _, p := range c.Packets {
				for _, h := range p.Hops {
					if !datapathPoints[h.Point] {
						continue
					}
					frame, err := replayreport.Rebuild(pkts[p.Index].Data, h)
					if err != nil {
						t.Fatalf("%s packet %d: %v", name, p.Index, err)
					}
					e := nodeapi.DatapathEvent{Node: h.Node, Time: base.Add(time.Duration(n) * time.Millisecond),
						Type: nodeapi.EventTrace, Point: string(h.Point), Device: h.Device, Frame: frame}
					if h.Verdict == journey.Dropped {
						e.Type, e.Reason = nodeapi.EventDrop, h.DropReason
					}
					n++
					b.WriteString(Format(e, top) + "\n")
				}
			}
		}
	}
	path := filepath.Join("testdata", "flows.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if b.String() != string(want) {
		t.Errorf("flow lines differ from %s:\n%s", path, b.String())
	}
}

// TestFormatUsesEventIdentities prefers the identities the datapath
// resolved over the topology's, and names the drop reason and TCP flags.
func TestFormatUsesEventIdentities(t *testing.T) {
	top, err := topologies.Builtin("policy")
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := fixtures.Packets("policy-denied-port")
	if err != nil {
		t.Fatal(err)
	}
	e := nodeapi.DatapathEvent{Node: "node2", Time: time.Date(2026, 11, 23, 9, 5, 1, 7e6, time.UTC), Type: nodeapi.EventDrop,
		Point: "to-container", Reason: "Policy denied", SrcIdentity: 4242, DstIdentity: 4343, Frame: pkts[0].Data}
	got := Format(e, top)
	want := "Nov 23 09:05:01.007 node2 pod1:40020 (ID:4242) -> pod4:9999 (ID:4343) to-container DROPPED (Policy denied, TCP Flags: SYN)"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if Verdict(e) != Dropped {
		t.Errorf("verdict %s", Verdict(e))
	}
	e.Type, e.Reason, e.Point = nodeapi.EventTrace, "", "to-network"
	if got := Format(e, nil); !strings.Contains(got, " 10.1.1.10:40020 (ID:4242) -> 10.1.2.40:9999 (ID:4343) to-netdev FORWARDED (TCP Flags: SYN)") {
		t.Errorf("without topology: %s", got)
	}
}
