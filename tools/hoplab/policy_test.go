package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
)

// policyFlow is a flow of a fixture packet, as policy trace takes it.
type policyFlow struct {
	fixture string
	index   int
	src     string
	dst     string
	dport   uint16
	proto   string
	want    journey.Packet
}

func (f policyFlow) args() []string {
	a := []string{"policy", "trace", "--topology", "policy", "--src", f.src, "--dst", f.dst, "--proto", f.proto}
	if f.dport != 0 {
		a = append(a, "--dport", fmt.Sprint(f.dport))
	}
	return a
}

// policyFlows lists the packets of every fixture case that runs on the
// policy topology.
func policyFlows(t *testing.T) []policyFlow {
	t.Helper()
	top, err := topologies.Builtin("policy")
	if err != nil {
		t.Fatal(err)
	}
	name := func(a netip.Addr) string {
		if p := top.PodByIP(a); p != nil {
			return p.Name
		}
		return a.String()
	}
	var flows []policyFlow
	for _, fx := range fixtures.Names() {
		exp, err := fixtures.Load(fx)
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := fixtures.Packets(fx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range exp.Cases {
			if c.Topology != "policy" {
				continue
			}
			for _, want := range c.Packets {
				k, ok := journey.KeyFromFrame(pkts[want.Index].Data)
				if !ok {
					t.Fatalf("%s packet %d: not IPv4", fx, want.Index)
				}
				proto := topologies.Protocol(k.Proto)
				f := policyFlow{fixture: fx, index: want.Index, src: name(k.Src.Addr()), dst: name(k.Dst.Addr()), proto: proto.String(), want: want}
				if proto != topologies.ICMP {
					f.dport = k.Dst.Port()
				}
				flows = append(flows, f)
			}
		}
	}
	if len(flows) < 4 {
		t.Fatalf("only %d policy fixture flows", len(flows))
	}
	return flows
}

// goldenPolicyFixtures are the fixtures whose trace text is golden; the
// verdict of every policy fixture is checked, also of fixtures added later.
var goldenPolicyFixtures = map[string]bool{"no-backend": true, "policy-denied-egress": true, "policy-denied-identity": true,
	"policy-denied-port": true, "tcp-syn-vip": true}

// TestPolicyTraceFixtures traces the flow of every packet of every policy
// fixture: the text matches its golden file and the verdict agrees with the
// fixture's expected journey (what the datapath does in the VM tests).
func TestPolicyTraceFixtures(t *testing.T) {
	for _, f := range policyFlows(t) {
		t.Run(fmt.Sprintf("%s/%d", f.fixture, f.index), func(t *testing.T) {
			out, errOut, code := runCLI(t, f.args()...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if goldenPolicyFixtures[f.fixture] {
				golden(t, fmt.Sprintf("policy-trace/%s.%d.txt", f.fixture, f.index), "$ hoplab "+strings.Join(f.args(), " ")+"\n"+out)
			}

			out, errOut, code = runCLI(t, append(f.args(), "--json")...)
			if code != 0 {
				t.Fatalf("--json: exit %d: %s", code, errOut)
			}
			var res struct {
				Verdict    string `json:"verdict"`
				DropReason string `json:"drop_reason"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("--json: %v\n%s", err, out)
			}
			if want := traceVerdictOf(f.want); res.Verdict != want {
				t.Errorf("trace verdict %s, the fixture expects %s (%s %s)", res.Verdict, want, f.want.Verdict, f.want.DropReason)
			}
		})
	}
}

// traceVerdictOf maps an expected journey onto the verdict policy trace
// must give for its flow.
func traceVerdictOf(p journey.Packet) string {
	switch {
	case p.Verdict == journey.Dropped && p.DropReason == topologies.DropPolicyDenied:
		return topologies.VerdictDenied
	case p.Verdict == journey.Dropped:
		return topologies.VerdictDropped
	}
	return topologies.VerdictAllowed
}

func TestPolicyTraceErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"policy", "trace", "--topology", "policy", "--dst", "pod4", "--dport", "80"}, "hoplab: policy trace: --src and --dst are required\n"},
		{[]string{"policy", "trace", "--topology", "policy", "--src", "pod1", "--dst", "pod4"}, "hoplab: policy trace: --dport is required for tcp\n"},
		{[]string{"policy", "trace", "--topology", "policy", "--src", "pod1", "--dst", "pod4", "--dport", "80", "--proto", "sctp"}, "hoplab: policy trace: --proto: "},
		{[]string{"policy", "trace", "--topology", "policy", "--src", "nosuch", "--dst", "pod4", "--dport", "80"}, "hoplab: policy trace: "},
		{[]string{"policy", "trace", "--src", "pod1", "--dst", "pod4", "--dport", "80"}, "hoplab: policy trace: no --topology given and no running cluster"},
	} {
		_, errOut, code := runCLI(t, c.args...)
		if code != 1 || !strings.HasPrefix(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want prefix %q", c.args, code, errOut, c.want)
		}
	}
}

// TestPolicyTraceHTTP traces HTTP requests through the l7 topology's
// rules: the text is golden, the JSON carries the proxy's decision.
func TestPolicyTraceHTTP(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		verdict string
		status  int
	}{
		{"l7-allowed", []string{"--src", "pod1", "--dst", "pod4", "--dport", "8080", "--http-method", "GET", "--http-path", "/public/a"}, topologies.VerdictAllowed, 0},
		{"l7-denied-service", []string{"--src", "pod1", "--dst", "10.224.1.1", "--dport", "80", "--http-method", "GET", "--http-path", "/private"}, topologies.VerdictDenied, 403},
		{"l7-egress-header", []string{"--src", "pod2", "--dst", "pod5", "--dport", "80", "--http-method", "GET", "--http-path", "/ok", "--http-header", "X-Trace: 1"}, topologies.VerdictAllowed, 0},
		{"l7-no-request", []string{"--src", "pod1", "--dst", "pod4", "--dport", "8080"}, topologies.VerdictAllowed, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"policy", "trace", "--topology", "l7"}, c.args...)
			out, errOut, code := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, "policy-trace/"+c.name+".txt", "$ hoplab "+strings.Join(args, " ")+"\n"+out)
			out, errOut, code = runCLI(t, append(args, "--json")...)
			if code != 0 {
				t.Fatalf("--json: exit %d: %s", code, errOut)
			}
			var res struct {
				Verdict string `json:"verdict"`
				Paths   []struct {
					HTTPStatus int `json:"http_status"`
				} `json:"paths"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("--json: %v\n%s", err, out)
			}
			if res.Verdict != c.verdict || res.Paths[0].HTTPStatus != c.status {
				t.Errorf("verdict %s status %d, want %s %d", res.Verdict, res.Paths[0].HTTPStatus, c.verdict, c.status)
			}
		})
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--http-method", "GET"}, "hoplab: policy trace: --http-method and --http-path go together\n"},
		{[]string{"--http-method", "GET", "--http-path", "/", "--http-header", "NoColon"}, `hoplab: policy trace: --http-header "NoColon": want "Name: value"` + "\n"},
		{[]string{"--http-method", "GET", "--http-path", "/", "--proto", "udp"}, "hoplab: policy trace: an HTTP request needs --proto tcp\n"},
	} {
		args := append([]string{"policy", "trace", "--topology", "l7", "--src", "pod1", "--dst", "pod4", "--dport", "8080"}, c.args...)
		_, errOut, code := runCLI(t, args...)
		if code != 1 || errOut != c.want {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errOut, c.want)
		}
	}
}
