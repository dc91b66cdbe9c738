package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestCommandsWithoutCluster checks that every command that needs the
// running cluster says so in one line when there is none.
func TestCommandsWithoutCluster(t *testing.T) {
	for _, args := range [][]string{
		{"ct", "list", "--node", "node1"},
		{"lb", "list", "--node", "node1"},
		{"endpoint", "list", "--node", "node1"},
		{"ipcache", "list", "--node", "node1"},
		{"policy", "get", "pod4", "--node", "node2"},
		{"metrics", "--node", "node1"},
		{"bgp", "routes", "--node", "node1"},
		{"bgp", "peers", "--node", "tor"},
		{"observe"},
		{"vm", "down"},
		{"vm", "exec", "node1", "--", "/init"},
	} {
		_, errOut, code := runCLI(t, args...)
		if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, cluster.ErrNoCluster.Error()) {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ct", "list"}, "hoplab: ct list: --node is required\n"},
		{[]string{"policy", "get", "--node", "node2"}, "hoplab: accepts 1 arg(s), received 0\n"},
		{[]string{"vm", "exec", "node1"}, "hoplab: requires at least 2 arg(s), only received 1\n"},
		{[]string{"vm", "exec", "node1", "/init"}, "hoplab: vm exec: want NODE -- CMD [ARG...]\n"},
		{[]string{"vm", "up"}, "hoplab: accepts 1 arg(s), received 0\n"},
		{[]string{"vm", "up", "no-such-topology"}, "hoplab: vm up: "},
		{[]string{"kernels", "fetch", "4.19"}, `hoplab: kernels fetch: unknown series "4.19"`},
		{[]string{"kernels", "fetch", "--flavour", "tiny"}, `hoplab: kernels fetch: unknown flavour "tiny"`},
	} {
		_, errOut, code := runCLI(t, c.args...)
		if code != 1 || !strings.HasPrefix(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want prefix %q", c.args, code, errOut, c.want)
		}
	}
}

// TestKernelsListEmptyCache lists the whole catalogue from an empty cache:
// every series in both flavours, none cached.
func TestKernelsListEmptyCache(t *testing.T) {
	t.Setenv("HOPLAB_CACHE", t.TempDir())
	out, errOut, code := runCLI(t, "kernels", "list", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []kernelRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if r.Cached || r.Path != "" || r.Release == "" || r.PackageVersion == "" {
			t.Errorf("row %+v", r)
		}
		seen[r.Series+"/"+r.Flavour] = true
	}
	for _, s := range []string{"5.10", "6.1", "6.12", "7.2"} {
		for _, f := range []string{"cloud", "generic"} {
			if !seen[s+"/"+f] {
				t.Errorf("%s %s missing from the list", s, f)
			}
		}
	}
	text, _, code := runCLI(t, "kernels", "list")
	if code != 0 || !strings.HasPrefix(text, "SERIES") || !strings.Contains(text, "6.1.0-") || !strings.Contains(text, "cache: ") {
		t.Errorf("text list:\n%s", text)
	}
}

// TestPlanBugReport plans the shipped example without booting: the bond0
// sightings are skipped, the two SYNs enter at pod web.
func TestPlanBugReport(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	a := &app{}
	p, err := a.planReplay(replayFlags{topology: "../../docs/examples/bug-report/topology.yaml", pcap: "../../docs/examples/bug-report/capture.pcap"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.frames) != 2 || p.sel.Packets[0].Index != 0 || p.sel.Packets[1].Index != 2 {
		t.Fatalf("planned %d frames (%+v)", len(p.frames), p.sel.Skipped)
	}
	for _, f := range p.frames {
		if f.Point.String() != "web" {
			t.Errorf("injected at %s, want web", f.Point)
		}
	}
	if len(p.sel.Skipped) != 2 || !strings.Contains(strings.Join(p.notes, "\n"), "packet 3 skipped: another sighting of packet 2") {
		t.Errorf("notes %q", p.notes)
	}
	// Addresses outside the topology enter at the router port facing the
	// first node.
	p, err = a.planReplay(replayFlags{topology: "../../docs/examples/bug-report/topology.yaml", pcap: "../../fixtures/data/tcp-syn-vip.pcap"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.frames[0].Point.String(); got != "tor:worker-a" {
		t.Errorf("foreign packet injected at %s", got)
	}
}

// TestObserveFilter checks observe's flag validation and filtering.
func TestObserveFilter(t *testing.T) {
	a := &app{}
	top, err := a.topology("policy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newFlowFilter(top, "", "maybe", ""); err == nil {
		t.Error("--verdict maybe accepted")
	}
	if _, err := newFlowFilter(top, "node9", "", ""); err == nil {
		t.Error("--node node9 accepted")
	}
	if _, err := newFlowFilter(top, "", "", "l4"); err == nil {
		t.Error("--type l4 accepted")
	}
	f, err := newFlowFilter(top, "node2", "dropped", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		node, typ string
		want      bool
	}{{"node2", "drop", true}, {"node2", "trace", false}, {"node1", "drop", false}} {
		d := eventOf(c.node, c.typ)
		if got := f.match(cluster.Event{Kind: cluster.EventDatapath, Datapath: &d}); got != c.want {
			t.Errorf("%s %s: match %v", c.node, c.typ, got)
		}
	}
	if f.match(cluster.Event{}) {
		t.Error("empty event matched")
	}
	l7 := func(node, verdict string) cluster.Event {
		return cluster.Event{Kind: cluster.EventL7, L7: &nodeapi.L7Event{Node: node, Type: nodeapi.L7Request, Verdict: verdict}}
	}
	if !f.match(l7("node2", nodeapi.L7Dropped)) || f.match(l7("node2", nodeapi.L7Forwarded)) || f.match(l7("node1", nodeapi.L7Dropped)) {
		t.Error("verdict and node filters on L7 records")
	}
	only, err := newFlowFilter(top, "", "", "L7")
	if err != nil {
		t.Fatal(err)
	}
	trace := eventOf("node2", nodeapi.EventTrace)
	if !only.match(l7("node1", nodeapi.L7Forwarded)) || only.match(cluster.Event{Kind: cluster.EventDatapath, Datapath: &trace}) {
		t.Error("--type l7")
	}
	errs, err := newFlowFilter(top, "", "error", "")
	if err != nil || !errs.match(l7("node1", nodeapi.L7Error)) || errs.match(l7("node1", nodeapi.L7Dropped)) {
		t.Errorf("--verdict error: %v", err)
	}
	line, err := only.line(l7("node2", nodeapi.L7Dropped), top, true)
	if err != nil || !strings.HasPrefix(line, `{"node":"node2","time":"0001-01-01T00:00:00Z","type":"http-request","verdict":"DROPPED"`) {
		t.Errorf("JSON line %s %v", line, err)
	}
	line, err = only.line(l7("node2", nodeapi.L7Dropped), top, false)
	if err != nil || !strings.Contains(line, " http-request DROPPED (") {
		t.Errorf("flow line %s %v", line, err)
	}
}

func eventOf(node, typ string) nodeapi.DatapathEvent {
	return nodeapi.DatapathEvent{Node: node, Type: typ}
}
