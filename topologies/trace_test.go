package topologies

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestTracePolicyTopology(t *testing.T) {
	top := mustBuiltin(t, "policy")
	for _, tc := range []struct {
		src, dst  string
		dport     uint16
		proto     Protocol
		verdict   string
		egress    Level
		ingress   Level
		dropPoint string
	}{
		{"pod1", "pod4", 8080, TCP, VerdictAllowed, LevelEnforcementOff, LevelL3L4, ""},
		{"pod1", "10.1.2.40", 8080, TCP, VerdictAllowed, LevelEnforcementOff, LevelL3L4, ""},
		{"pod3", "pod4", 8080, TCP, VerdictDenied, LevelEnforcementOff, LevelDefaultDeny, "to-container"},
		{"pod1", "pod4", 9999, TCP, VerdictDenied, LevelEnforcementOff, LevelDefaultDeny, "to-container"},
		{"pod3", "pod5", 9090, TCP, VerdictAllowed, LevelEnforcementOff, LevelL4Only, ""},
		{"pod3", "pod5", 9091, TCP, VerdictDenied, LevelEnforcementOff, LevelDefaultDeny, "to-container"},
		{"pod1", "pod6", 5432, UDP, VerdictAllowed, LevelEnforcementOff, LevelL3Only, ""},
		{"pod1", "pod6", 0, ICMP, VerdictAllowed, LevelEnforcementOff, LevelL3Only, ""},
		{"pod3", "pod6", 5432, TCP, VerdictDenied, LevelEnforcementOff, LevelDefaultDeny, "to-container"},
		{"pod3", "pod7", 80, TCP, VerdictAllowed, LevelEnforcementOff, LevelAllowAll, ""},
		{"10.99.0.1", "pod7", 80, TCP, VerdictAllowed, LevelEnforcementOff, LevelAllowAll, ""},
		{"pod1", "pod8", 8080, TCP, VerdictDenied, LevelEnforcementOff, LevelDefaultDeny, "to-container"},
		{"pod2", "pod4", 8080, TCP, VerdictAllowed, LevelL3L4, LevelL3L4, ""},
		{"pod2", "pod5", 9090, TCP, VerdictDenied, LevelDefaultDeny, LevelL4Only, "from-container"},
		{"pod2", "10.99.0.1", 443, TCP, VerdictDenied, LevelDefaultDeny, LevelEnforcementOff, "from-container"},
		{"node2", "pod4", 8080, TCP, VerdictAllowed, LevelEnforcementOff, LevelEnforcementOff, ""},         // local host: no to-container
		{"node1", "pod4", 8080, TCP, VerdictDenied, LevelEnforcementOff, LevelDefaultDeny, "to-container"}, // remote-node
		{"pod1", "node1", 22, TCP, VerdictAllowed, LevelEnforcementOff, LevelEnforcementOff, ""},
	} {
		name := tc.src + "->" + tc.dst
		t.Run(name, func(t *testing.T) {
			r, err := Trace(top, tc.src, tc.dst, tc.dport, tc.proto)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Paths) != 1 {
				t.Fatalf("%d paths", len(r.Paths))
			}
			p := r.Paths[0]
			if r.Verdict != tc.verdict || p.Egress.Level != tc.egress || p.Ingress.Level != tc.ingress || p.DropPoint != tc.dropPoint {
				t.Errorf("verdict %s egress %v ingress %v drop %q; want %s %v %v %q\n%s",
					r.Verdict, p.Egress.Level, p.Ingress.Level, p.DropPoint, tc.verdict, tc.egress, tc.ingress, tc.dropPoint, r)
			}
			if tc.verdict == VerdictDenied && (r.DropReason != DropPolicyDenied || p.DropReason != DropPolicyDenied) {
				t.Errorf("drop reason %q/%q", r.DropReason, p.DropReason)
			}
		})
	}
}

func TestTraceRemoteIdentities(t *testing.T) {
	top := mustBuiltin(t, "policy")
	for _, tc := range []struct {
		src  string
		want Identity
	}{
		{"node1", IdentityRemoteNode},    // another node
		{"10.1.1.1", IdentityRemoteNode}, // its router IP
		{"tor", IdentityWorld},
		{"10.255.2.1", IdentityWorld}, // the ToR's address
		{"8.8.8.8", IdentityWorld},
		{"pod1", top.Pod("pod1").Identity},
	} {
		r, err := Trace(top, tc.src, "pod4", 8080, TCP)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Paths[0].Ingress.RemoteIdentity; got != tc.want {
			t.Errorf("%s: remote identity %v, want %v", tc.src, got, tc.want)
		}
	}
}

func TestTraceService(t *testing.T) {
	top := mustBuiltin(t, "pod-to-service")
	r, err := Trace(top, "pod1", "10.224.1.1", 80, TCP)
	if err != nil {
		t.Fatal(err)
	}
	if r.Service == nil || r.Service.Name != "backend" || len(r.Paths) != 1 || r.Paths[0].Backend != "pod4:8080" || r.Paths[0].DPort != 8080 {
		t.Fatalf("service not translated:\n%s", r)
	}
	if r.Verdict != VerdictAllowed || r.Paths[0].Ingress.Level != LevelL3L4 || *r.Paths[0].Ingress.Key != (PolicyKey{Ingress, top.Pod("pod1").Identity, 8080, TCP}) {
		t.Errorf("unexpected:\n%s", r)
	}
	text := r.String()
	for _, want := range []string{
		"Tracing From: pod pod1 (10.1.1.10, identity",
		"Service backend at 10.224.1.1:80/tcp: 1 backend(s)",
		"-> Backend pod4:8080: pod pod4 (10.1.2.40",
		"Egress  at pod1 (from-container on node1)",
		"no policy selects pod1: enforcement off: allowed",
		"Ingress at pod4 (to-container on node2)",
		"found (L3L4)",
		`allowed by policy "policies[0]" ingress[0] (line 25)`,
		"Final verdict: ALLOWED",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	var js map[string]any
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &js); err != nil || js["verdict"] != "ALLOWED" || !strings.Contains(string(raw), `"level":"L3L4"`) || !strings.Contains(string(raw), `"proto":"tcp"`) {
		t.Errorf("JSON: %s", raw)
	}

	// Port not served by the service: no translation, a note.
	r, _ = Trace(top, "pod1", "10.224.1.1", 81, TCP)
	if r.Service != nil || len(r.Notes) == 0 || r.Paths[0].Dst.Kind != PeerWorld {
		t.Errorf("VIP on wrong port:\n%s", r)
	}
}

func TestTraceNoBackend(t *testing.T) {
	top := mustBuiltin(t, "no-backend")
	r, err := Trace(top, "pod1", "10.224.1.9", 80, TCP)
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != VerdictDropped || r.DropReason != DropNoBackend || r.DropPoint != "from-container" || len(r.Paths) != 0 {
		t.Errorf("want DROPPED (Service backend not found):\n%s", r)
	}
	if !strings.Contains(r.String(), "Final verdict: DROPPED (Service backend not found)") ||
		!strings.Contains(r.String(), "No backend: dropped at from-container (Service backend not found)") {
		t.Error(r)
	}
	// Without a drop point the line says only the reason.
	r.DropPoint = ""
	if !strings.Contains(r.String(), "No backend: dropped (Service backend not found)") {
		t.Error(r)
	}
	// Allowed traces have no such line.
	r.Verdict, r.DropReason = VerdictAllowed, ""
	if strings.Contains(r.String(), "No backend") {
		t.Error(r)
	}
}

func TestTraceMultiBackendAndNodePort(t *testing.T) {
	top := mustBuiltin(t, "multi-backend")
	r, err := Trace(top, "pod1", "10.224.1.2", 80, TCP)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Paths) != 4 || r.Verdict != VerdictAllowed {
		t.Errorf("want 4 allowed paths:\n%s", r)
	}
	r, err = Trace(top, "198.51.100.7", "10.255.2.12", 30080, TCP)
	if err != nil {
		t.Fatal(err)
	}
	if r.Service == nil || !strings.Contains(r.Service.Frontend, "nodePort") || len(r.Paths) != 4 {
		t.Errorf("nodePort not translated:\n%s", r)
	}
}

func TestTraceMixed(t *testing.T) {
	top, err := Parse("t.yaml", mutate(map[int]string{
		15: "  - {name: pod5, node: node2, ip: 10.1.2.50, labels: {app: c}, listen: [\"tcp/8080\"]}",
		16: "services:",
		17: "  - {name: svc, vip: 10.224.1.1, port: 80, backends: [\"pod4:8080\", \"pod5:8080\"]}",
		18: "policies:",
		19: "  - endpointSelector: {matchLabels: {app: b}}",
		20: "    ingress:",
		21: "      - fromEndpoints: [{matchLabels: {app: a}}]",
		22: "        toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]",
	}))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := Trace(top, "10.99.0.1", "10.224.1.1", 80, TCP)
	if r.Verdict != VerdictMixed || r.Paths[0].Allowed || !r.Paths[1].Allowed {
		t.Errorf("want MIXED:\n%s", r)
	}
	// A mixed verdict names no single reason; the sender, from outside,
	// is no endpoint and has no egress policy.
	s := r.String()
	if !strings.HasSuffix(s, "\nFinal verdict: MIXED\n") || !strings.Contains(s, "   Egress : not an endpoint, no policy applies: allowed\n") {
		t.Errorf("text:\n%s", s)
	}
}

func TestTraceErrors(t *testing.T) {
	top := mustBuiltin(t, "policy")
	if _, err := Trace(top, "nobody", "pod4", 80, TCP); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("unknown source: %v", err)
	}
	if _, err := Trace(top, "pod1", "pod4", 80, Any); err == nil {
		t.Error("protocol any accepted")
	}
}

func TestTraceEgressDeniedText(t *testing.T) {
	top := mustBuiltin(t, "policy")
	r, _ := Trace(top, "pod2", "pod5", 9090, TCP)
	text := r.String()
	for _, want := range []string{
		"selected by client-egress: egress enforcement on",
		"lookup L3L4      {identity",
		"lookup allow-all {identity 0, port 0, any}: not found",
		"no entry matches: default deny: Policy denied",
		"Ingress: not reached (dropped at egress)",
		"Verdict: DENIED at from-container (Policy denied)",
		"Final verdict: DENIED (Policy denied)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

// TestIPCacheAgreesWithTrace checks that the identities Trace uses for
// sources are those the node's ipcache holds.
func TestIPCacheAgreesWithTrace(t *testing.T) {
	top := mustBuiltin(t, "policy")
	cache := top.IPCache("node2")
	if cache[0].Prefix.String() != "0.0.0.0/0" || cache[0].Identity != IdentityWorld {
		t.Errorf("first entry %+v", cache[0])
	}
	for _, e := range cache[1:] {
		if e.Identity == IdentityHost {
			continue // local host traffic bypasses to-container; see TestTraceLocalHost
		}
		r, err := Trace(top, e.Prefix.Addr().String(), "pod4", 8080, TCP)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Paths[0].Ingress.RemoteIdentity; got != e.Identity {
			t.Errorf("%s: trace uses %v, ipcache has %v", e.Prefix, got, e.Identity)
		}
		if n := top.Node(e.Node); e.Node != "node2" && e.TunnelEndpoint != n.Uplink.Address.Addr() {
			t.Errorf("%s: tunnel endpoint %v", e.Prefix, e.TunnelEndpoint)
		}
	}
}

func TestTraceLocalHost(t *testing.T) {
	top := mustBuiltin(t, "policy")
	for _, src := range []string{"node2", "10.1.2.1", "10.255.2.12"} {
		r, err := Trace(top, src, "pod8", 8080, TCP)
		if err != nil {
			t.Fatal(err)
		}
		in := r.Paths[0].Ingress
		if r.Verdict != VerdictAllowed || in.Bypass == "" || in.RemoteIdentity != IdentityHost {
			t.Errorf("%s -> pod8: %s", src, r)
		}
		if !strings.Contains(r.String(), "Ingress at pod8: no policy: traffic from the local host") {
			t.Error(r)
		}
	}
	// A pod's egress to its own node's host is still policed.
	r, _ := Trace(top, "pod2", "node1", 22, TCP)
	if e := r.Paths[0].Egress; e.RemoteIdentity != IdentityHost || e.Level != LevelDefaultDeny {
		t.Errorf("pod2 -> node1: %s", r)
	}
}

// A node address answers as a NodePort frontend only on a service's
// nodePort and protocol.
func TestTraceNodePortOnlyOnItsPort(t *testing.T) {
	top := mustBuiltin(t, "multi-backend")
	for _, tc := range []struct {
		port  uint16
		proto Protocol
	}{{30081, TCP}, {30080, UDP}, {80, TCP}, {0, TCP}} {
		r, err := Trace(top, "198.51.100.7", "10.255.2.12", tc.port, tc.proto)
		if err != nil {
			t.Fatal(err)
		}
		if r.Service != nil {
			t.Errorf("node address port %d/%v: translated by %+v", tc.port, tc.proto, r.Service)
		}
	}
}

// The ToR's address on a node's network resolves to the router (world);
// outside addresses are world, named with their address.
func TestResolveGatewayAndWorld(t *testing.T) {
	top := mustBuiltin(t, "multi-backend")
	gw := top.Nodes[0].Uplink.Gateway
	p, err := top.Resolve(gw.String())
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != PeerWorld || p.Name != top.Router.Name || p.Identity != IdentityWorld || p.String() != "world "+top.Router.Name+" ("+gw.String()+")" {
		t.Errorf("gateway %s resolves to %+v %q", gw, p, p)
	}
	p, err = top.Resolve("198.51.100.7")
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != PeerWorld || p.String() != "world world (198.51.100.7)" {
		t.Errorf("outside address: %+v %q", p, p)
	}
	if s := (Peer{Kind: PeerWorld, Name: "world"}).String(); s != "world world" {
		t.Errorf("world without an address: %q", s)
	}
}
