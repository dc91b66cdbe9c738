package replayreport

import (
	"testing"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
)

// expected returns the report a fixture's first case expects, with its
// topology and the fixture's frames by packet index.
func expected(t *testing.T, name string) (journey.Report, *topologies.Topology, map[int][]byte) {
	t.Helper()
	exp, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	c := exp.Cases[0]
	top, err := topologies.Builtin(c.Topology)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := fixtures.Packets(name)
	if err != nil {
		t.Fatal(err)
	}
	frames := map[int][]byte{}
	for _, p := range pkts {
		frames[p.Index] = p.Data
	}
	return journey.Report{Kernel: "6.1.0-56-cloud-amd64 (expected)", Packets: c.Packets}, top, frames
}
