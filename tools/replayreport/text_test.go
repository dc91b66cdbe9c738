package replayreport

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenFixtures are the fixtures whose rendering is golden; fixtures added
// later do not break this test until they are added here (and the golden
// files regenerated with -update).
var goldenFixtures = []string{"captured-http-get", "icmp-echo", "no-backend", "policy-denied-egress", "policy-denied-identity",
	"policy-denied-port", "tcp-handshake", "tcp-syn-vip", "ttl-1", "udp-service", "nodeport-syn", "nodeport-local", "nodeport-policy-denied"}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestTextGolden renders the expected journeys of every fixture case.
func TestTextGolden(t *testing.T) {
	for _, name := range goldenFixtures {
		exp, err := fixtures.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range exp.Cases {
			t.Run(name+"/"+c.Topology, func(t *testing.T) {
				top, err := topologies.Builtin(c.Topology)
				if err != nil {
					t.Fatal(err)
				}
				var b bytes.Buffer
				if err := WriteText(&b, journey.Report{Kernel: "6.1.192", Packets: c.Packets}, top); err != nil {
					t.Fatal(err)
				}
				golden(t, name+"."+c.Topology+".txt", b.String())
			})
		}
	}
}

func TestDropLineNamesHopReasonAndIdentities(t *testing.T) {
	rep, top, _ := expected(t, "policy-denied-port")
	got := DropLine(rep.Packets[0], top)
	pod1, pod4 := top.Pod("pod1"), top.Pod("pod4")
	for _, want := range []string{"Policy denied", "node2 to-container " + pod4.LXCName,
		"identity " + pod1.Identity.String() + " [app=frontend]", "identity " + pod4.Identity.String() + " [app=backend]"} {
		if !strings.Contains(got, want) {
			t.Errorf("drop line %q lacks %q", got, want)
		}
	}
	if DropLine(journey.Packet{Verdict: journey.Delivered}, top) != "" {
		t.Error("a delivered packet has a drop line")
	}
}

func TestLostLineNamesLastHop(t *testing.T) {
	p := journey.Packet{Verdict: journey.Lost, Hops: []journey.Hop{{Node: "worker-a", Point: journey.Wire, Device: "worker-a-0"}}}
	if got, want := LostLine(p), "lost: last seen at hop 00, worker-a wire worker-a-0; "; !strings.HasPrefix(got, want) {
		t.Errorf("got %q, want prefix %q", got, want)
	}
	if LostLine(journey.Packet{Verdict: journey.Lost}) != "lost: never observed after injection" {
		t.Error("lost without hops")
	}
	if LostLine(journey.Packet{Verdict: journey.Dropped}) != "" {
		t.Error("a dropped packet has a lost line")
	}
}
