package topologies

import (
	"fmt"
	"strings"
	"testing"
)

// TestManyErrorsAreCapped: a topology with thousands of errors lists the
// first MaxErrors and sums up the rest in one more line, where they start.
func TestManyErrorsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: big\nrouter: {name: tor, asn: 65000}\nnodes:\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "  - {name: n%d, asn: 1, bogus: x}\n", i)
	}
	_, err := Parse("big.yaml", []byte(b.String()))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != MaxErrors+1 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), MaxErrors+1, err)
	}
	last := lines[MaxErrors]
	if !strings.HasPrefix(last, "big.yaml:") || !strings.Contains(last, "more error(s) from here on (the first 20 are listed)") {
		t.Errorf("last line %q", last)
	}
}

// TestMissingKeysGiveNoFollowOnErrors: nodes missing their name, ASN or
// uplink address get one error each, and validation adds none of its own
// about the missing values (two empty names are not "already used", two
// zero ASNs are not shared, a missing address is not checked).
func TestMissingKeysGiveNoFollowOnErrors(t *testing.T) {
	src := `name: t
router: {name: tor, asn: 65000}
nodes:
  - {asn: 65001, podCIDR: 10.1.1.0/24, uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1}}
  - {asn: 65002, podCIDR: 10.1.2.0/24, uplink: {address: 10.255.2.11/24, gateway: 10.255.2.1}}
  - {name: n3, podCIDR: 10.1.3.0/24, uplink: {address: 10.255.3.11/24, gateway: 10.255.3.1}}
  - {name: n4, podCIDR: 10.1.4.0/24, uplink: {address: 10.255.4.11/24, gateway: 10.255.4.1}}
  - {name: n5, asn: 65005, podCIDR: 10.1.5.0/24, uplink: {gateway: 10.255.5.1}}
  - {name: n6, asn: 65006, podCIDR: 10.1.6.0/24, uplink: {gateway: 10.255.6.1}}
`
	_, err := Parse("t.yaml", []byte(src))
	want := `t.yaml:4:5: node: missing required key "name"
t.yaml:5:5: node: missing required key "name"
t.yaml:6:5: node: missing required key "asn"
t.yaml:7:5: node: missing required key "asn"
t.yaml:8:58: uplink: missing required key "address"
t.yaml:9:58: uplink: missing required key "address"`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// TestIdentityOfFollowsCollisions: when two label sets hash to the same
// preferred identity, the topology gives the second pod another one, and
// IdentityOf answers with what the topology gave, not the preferred value.
func TestIdentityOfFollowsCollisions(t *testing.T) {
	seen := map[Identity]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		v := fmt.Sprintf("a%d", i)
		id := IdentityOf(Labels{"app": v})
		if prev, ok := seen[id]; ok {
			a, b = prev, v
		}
		seen[id] = v
	}
	src := fmt.Sprintf(`name: t
router: {name: tor, asn: 65000}
nodes:
  - {name: n1, asn: 65001, podCIDR: 10.1.1.0/24, uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1}}
pods:
  - {name: p1, node: n1, ip: 10.1.1.10, labels: {app: %s}}
  - {name: p2, node: n1, ip: 10.1.1.20, labels: {app: %s}}
`, a, b)
	top, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := top.Pod("p1"), top.Pod("p2")
	if p1.Identity == p2.Identity {
		t.Fatalf("app=%s and app=%s share identity %v", a, b, p1.Identity)
	}
	for _, p := range []*Pod{p1, p2} {
		if got := top.IdentityOf(p.Labels); got != p.Identity {
			t.Errorf("IdentityOf(%v) = %v, the pod has %v", p.Labels, got, p.Identity)
		}
	}
}

// TestTraceVerdictLine: an allowed trace ends in a bare verdict line, a
// dropped one names its reason, and a trace to a node's address on port 0
// finds no NodePort service (a service without one has NodePort 0).
func TestTraceVerdictLine(t *testing.T) {
	top, err := Builtin("policy")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Trace(top, "pod1", "pod4", 8080, TCP)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.String(); !strings.HasSuffix(s, "\nFinal verdict: ALLOWED\n") {
		t.Errorf("allowed trace ends with %q", s[max(0, len(s)-60):])
	}
	node := top.Nodes[0]
	r, err = Trace(top, "pod1", node.Uplink.Address.Addr().String(), 0, TCP)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.String(), "nodePort") {
		t.Errorf("port 0 on %s matched a NodePort service:\n%s", node.Name, r)
	}
}
