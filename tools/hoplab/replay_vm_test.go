//go:build vm

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/tools/replayreport"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// caseOf returns the fixture's case for a topology.
func caseOf(t *testing.T, fixture, topology string) fixtures.Case {
	t.Helper()
	exp, err := fixtures.Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	c, err := exp.Case(topology)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serve starts a cluster for the topology and serves it as `hoplab vm up`
// does, with this test's private runtime dir, so that the CLI reuses it.
func serve(t *testing.T, name string) *cluster.Cluster {
	t.Helper()
	top, err := topologies.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	c := cluster.StartT(t, cluster.Spec{Topology: top, Series: os.Getenv("HOPLAB_SERIES"), ConsoleLine: func(string, string) {}})
	state, err := c.Serve()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("serving %s (%s): boot+setup+converge %v", name, state, c.Timings().Total().Round(time.Millisecond))
	return c
}

// TestReplayFixturesCLI runs `hoplab replay --json` on every fixture, in
// every topology its expectation names, against a served cluster (the CLI
// reuses it), and compares the journeys with the expectation; for the
// policy topology it also checks that `hoplab policy trace` agrees with the
// verdict the datapath gave, that observe shows the flows, and the dumps.
func TestReplayFixturesCLI(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	groups, err := fixtures.ByTopology()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		name := g.Topology
		t.Run(name, func(t *testing.T) {
			c := serve(t, name)
			for _, fx := range g.Fixtures {
				t.Run(fx, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := c.Reset(ctx); err != nil {
						t.Fatal(err)
					}
					cs := caseOf(t, fx, name)
					args := []string{"replay", "--topology", name, "--pcap", filepath.Join("..", "..", "fixtures", "data", fx+".pcap"), "--json"}
					if cs.Inject != "" {
						args = append(args, "--inject", cs.Inject)
					}
					if exp, err := fixtures.Load(fx); err == nil && slices.Contains(exp.Requires, "tcp-ack-rewrite") {
						args = append(args, "--ack-rewrite")
					}
					begin := time.Now()
					out, errOut, code := runCLIHere(args...)
					if code != 0 {
						t.Fatalf("hoplab %s: exit %d: %s", strings.Join(args, " "), code, errOut)
					}
					if !strings.Contains(errOut, "reusing running cluster") {
						t.Errorf("the running cluster was not reused:\n%s", errOut)
					}
					rep, err := journey.DecodeReport(strings.NewReader(out))
					if err != nil {
						t.Fatalf("--json output: %v\n%s", err, out)
					}
					t.Logf("%d packet(s) replayed through the CLI in %v", len(rep.Packets), time.Since(begin).Round(time.Millisecond))
					if len(rep.Packets) != len(cs.Packets) {
						t.Fatalf("%d journeys, want %d", len(rep.Packets), len(cs.Packets))
					}
					for i, want := range cs.Packets {
						if d := journey.Diff(want, rep.Packets[i]); !d.Equal() {
							t.Errorf("packet %d:\n%s", i, d)
						}
					}
					if name == "policy" {
						checkTraceAgrees(t, fx, rep)
					}
				})
			}
			if name == "policy" {
				t.Run("observe", func(t *testing.T) { checkObserve(t) })
				t.Run("dumps", func(t *testing.T) { checkDumps(t) })
				t.Run("vm-exec", func(t *testing.T) { checkExec(t) })
			}
		})
	}
}

// checkTraceAgrees runs policy trace for every replayed packet and
// compares its verdict with the datapath's.
func checkTraceAgrees(t *testing.T, fx string, rep journey.Report) {
	t.Helper()
	pkts, err := fixtures.Packets(fx)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range rep.Packets {
		k, _ := journey.KeyFromFrame(pkts[got.Index].Data)
		proto := topologies.Protocol(k.Proto)
		args := []string{"policy", "trace", "--topology", "policy", "--src", k.Src.Addr().String(), "--dst", k.Dst.Addr().String(),
			"--proto", proto.String(), "--json"}
		if proto != topologies.ICMP {
			args = append(args, "--dport", fmt.Sprint(k.Dst.Port()))
		}
		out, errOut, code := runCLIHere(args...)
		if code != 0 {
			t.Fatalf("policy trace: %s", errOut)
		}
		var res struct {
			Verdict   string `json:"verdict"`
			DropPoint string `json:"drop_point"`
			Paths     []struct {
				DropPoint string `json:"drop_point"`
			} `json:"paths"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if want := traceVerdictOf(got); res.Verdict != want {
			t.Errorf("packet %d: policy trace says %s, the datapath %s (%s)", got.Index, res.Verdict, got.Verdict, got.DropReason)
		}
		if got.Verdict == journey.Dropped && got.DropReason == topologies.DropPolicyDenied {
			i := replayreport.DropHop(got)
			if i < 0 || len(res.Paths) == 0 || res.Paths[0].DropPoint != string(got.Hops[i].Point) {
				t.Errorf("packet %d: dropped at hop %d by the datapath, policy trace says %+v", got.Index, i, res.Paths)
			}
		}
	}
}

// checkObserve streams flows while a denied packet is replayed.
func checkObserve(t *testing.T) {
	var o, e bytes.Buffer
	a := &app{stdout: &o, stderr: &e}
	ready := make(chan struct{})
	a.onObserving = func() { close(ready) }
	root := newRoot(a)
	root.SetArgs([]string{"observe", "--duration", "8s", "--verdict", "DROPPED"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(context.Background()) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("observe ended early: %v: %s", err, e.String())
	case <-time.After(30 * time.Second):
		t.Fatal("observe never subscribed")
	}
	_, errOut, code := runCLIHere("replay", "--topology", "policy", "--pcap", "../../fixtures/data/policy-denied-port.pcap")
	if code != 0 {
		t.Fatalf("replay: %s", errOut)
	}
	if err := <-done; err != nil {
		t.Fatalf("observe: %v: %s", err, e.String())
	}
	want := "node2 pod1:40020 (ID:"
	lines := strings.Split(strings.TrimSpace(o.String()), "\n")
	found := false
	for _, l := range lines {
		if !strings.Contains(l, " DROPPED (") {
			t.Errorf("--verdict DROPPED printed %q", l)
		}
		if strings.Contains(l, want) && strings.Contains(l, "-> pod4:9999 (ID:") && strings.Contains(l, "to-container DROPPED (Policy denied, TCP Flags: SYN)") {
			found = true
		}
	}
	if !found {
		t.Errorf("no flow line for the denied SYN in:\n%s", o.String())
	}
	t.Logf("observe:\n%s", o.String())
}

// checkDumps runs every dump command, as text and JSON, after
// policy-denied-port was replayed last.
func checkDumps(t *testing.T) {
	top, _ := topologies.Builtin("policy")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"ct", "list", "--node", "node1"}, []string{"10.1.2.40:9999"}},
		{[]string{"lb", "list", "--node", "node1"}, []string{"10.224.1.1:80", "10.1.2.40:8080"}},
		{[]string{"endpoint", "list", "--node", "node2"}, []string{"pod4", top.Pod("pod4").LXCName}},
		{[]string{"ipcache", "list", "--node", "node1"}, []string{"10.1.2.40/32"}},
		{[]string{"policy", "get", "pod4", "--node", "node2"}, []string{"8080"}},
		{[]string{"metrics", "--node", "node2"}, []string{"Policy denied"}},
		{[]string{"bgp", "peers", "--node", "tor"}, []string{"10.255.1.11", "10.255.2.12"}},
		// The local prefix: learned ones come and go when a session flaps
		// on a loaded machine.
		{[]string{"bgp", "routes", "--node", "node1"}, []string{"10.1.1.0/24"}},
	} {
		out, errOut, code := runCLIHere(c.args...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", c.args, code, errOut)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v lacks %q:\n%s", c.args, w, out)
			}
		}
		js, errOut, code := runCLIHere(append(c.args, "--json")...)
		var rows []json.RawMessage
		if code != 0 || json.Unmarshal([]byte(js), &rows) != nil || len(rows) == 0 {
			t.Errorf("%v --json: exit %d, %s, output %q", c.args, code, errOut, js)
		}
	}
	var rows []nodeapi.PolicyRow
	js, _, _ := runCLIHere("policy", "get", "pod4", "--node", "node2", "--json")
	if err := json.Unmarshal([]byte(js), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || rows[0].Port != 8080 {
		t.Errorf("pod4's policy: %+v", rows)
	}
	_, errOut, code := runCLIHere("ct", "list", "--node", "node9")
	if code != 1 || !strings.HasPrefix(errOut, `hoplab: ct list: no node "node9" in the running cluster`) {
		t.Errorf("unknown node: exit %d, %q", code, errOut)
	}
	// A guest's refusal, through the relay of the running cluster: the
	// node and the method named once, then the guest's reason.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ct", "list", "--node", "tor"}, "hoplab: tor: ct-list: a router has no datapath or pods: not set up: call node-setup (or router-setup) first\n"},
		{[]string{"policy", "get", "pod9", "--node", "node2"}, "hoplab: node2: policy-get: no pod or endpoint \"pod9\"\n"},
		{[]string{"policy", "get", "pod1", "--node", "node2"}, "hoplab: node2: policy-get: pod pod1 runs on node1\n"},
	} {
		_, errOut, code := runCLIHere(c.args...)
		if code != 1 || errOut != c.want {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, code, errOut, c.want)
		}
		if r := errtext.Repeated(errOut); r != "" {
			t.Errorf("%v: %q repeats %q", c.args, errOut, r)
		}
	}
}

// checkExec runs the guest's only binary through the agent: its refusal to
// run as a command comes back with exit status 1.
func checkExec(t *testing.T) {
	_, errOut, code := runCLIHere("vm", "exec", "node1", "--", "/init")
	if code != 1 || !strings.Contains(errOut, "only as init") {
		t.Errorf("vm exec node1 -- /init: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runCLIHere("vm", "exec", "node9", "--", "/init")
	if code != 1 || !strings.HasPrefix(errOut, `hoplab: vm exec: no VM "node9"`) {
		t.Errorf("unknown VM: exit %d, %q", code, errOut)
	}
}

// TestBugReportExample replays the shipped bug-report example the way
// README tells a newcomer to, with no cluster running (so replay boots and
// tears down its own): both SYNs are dropped with "Policy denied" at
// worker-b's to-container, and --out writes the per-hop captures and the
// HTML report.
func TestBugReportExample(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	out := t.TempDir()
	begin := time.Now()
	stdout, errOut, code := runCLI(t, "replay", "--topology", "../../docs/examples/bug-report/topology.yaml",
		"--pcap", "../../docs/examples/bug-report/capture.pcap", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("replay with boot and teardown: %v\n%s", time.Since(begin).Round(time.Millisecond), stdout)
	top, err := topologies.Load("../../docs/examples/bug-report/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lxc := top.Pod("orders").LXCName
	for _, want := range []string{
		"packet 0: DROPPED (Policy denied)", "packet 2: DROPPED (Policy denied)",
		"drop: Policy denied at hop 08, worker-b to-container " + lxc + "; src 10.20.1.15 (identity",
		"10.20.1.15 -> 10.96.40.10  ttl 64", "10.20.1.15 -> *10.20.2.25  ttl 64",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(stdout, "packet 1:") || strings.Contains(stdout, "packet 3:") {
		t.Error("the bond0 sightings were replayed too")
	}
	if !strings.Contains(errOut, "packet 1 skipped: another sighting of packet 0") || !strings.Contains(errOut, "selects no pod") {
		t.Errorf("stderr lacks the duplicate note or the topology warning:\n%s", errOut)
	}
	html, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(html, []byte("DROP: Policy denied")) || !bytes.Contains(html, []byte(lxc)) {
		t.Error("report.html lacks the drop")
	}
	pcaps, _ := filepath.Glob(filepath.Join(out, "*.pcapng"))
	if len(pcaps) != 9 {
		t.Errorf("%d per-hop captures, want 9: %v", len(pcaps), pcaps)
	}

	// The README's fix: label the policy's peer like the pod.
	text, err := os.ReadFile("../../docs/examples/bug-report/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fixed := filepath.Join(t.TempDir(), "fixed.yaml")
	if err := os.WriteFile(fixed, bytes.Replace(text, []byte("tier: front-end"), []byte("tier: frontend"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	// With --timing the retransmission goes 1.002 s after the first SYN,
	// as in the capture.
	stdout, errOut, code = runCLI(t, "-v", "replay", "--timing", "--topology", fixed, "--pcap", "../../docs/examples/bug-report/capture.pcap")
	if code != 0 {
		t.Fatalf("fixed topology: exit %d: %s", code, errOut)
	}
	took := regexp.MustCompile(`msg=replayed packets=2 took=([0-9.a-zµ]+)`).FindStringSubmatch(errOut)
	if took == nil {
		t.Errorf("no replay duration in the debug log")
	} else if d, err := time.ParseDuration(took[1]); err != nil || d < time.Second {
		t.Errorf("--timing replay took %s, want at least the capture's 1.002 s gap", took[1])
	}
	if strings.Count(stdout, ": DELIVERED to orders") != 2 {
		t.Errorf("with the label fixed, both SYNs should reach orders:\n%s", stdout)
	}
}
