package topologies

import (
	"fmt"
	"strings"
	"testing"
)

func TestReservedIdentities(t *testing.T) {
	for id, name := range map[Identity]string{1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init", 6: "remote-node", 7: "kube-apiserver"} {
		if id.ReservedName() != name {
			t.Errorf("identity %d: %q, want %q", id, id.ReservedName(), name)
		}
	}
	if IdentityWorld.String() != "2 (reserved:world)" {
		t.Errorf("String: %s", IdentityWorld)
	}
}

func TestSameLabelsSameIdentityAcrossFiles(t *testing.T) {
	all := map[string]Identity{}
	for _, name := range Names() {
		top, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range top.Pods {
			k := p.Labels.String()
			if id, ok := all[k]; ok && id != p.Identity {
				t.Errorf("%s: %s has identity %d, elsewhere %d", name, k, p.Identity, id)
			}
			all[k] = p.Identity
			if p.Identity != IdentityOf(p.Labels) || p.Identity != top.IdentityOf(p.Labels) {
				t.Errorf("%s: pod %s identity %d, IdentityOf %d", name, p.Name, p.Identity, IdentityOf(p.Labels))
			}
		}
	}
	// Label order does not matter.
	if IdentityOf(Labels{"app": "x", "tier": "y"}) != IdentityOf(Labels{"tier": "y", "app": "x"}) {
		t.Error("identity depends on map order")
	}
	if IdentityOf(Labels{"app": "x"}) == IdentityOf(Labels{"app": "y"}) {
		t.Error("different labels, same identity")
	}
}

func TestIdentitiesOrderIndependentAndShared(t *testing.T) {
	a, _ := Parse("a.yaml", mutate(map[int]string{14: "  - {name: pod4, node: node2, ip: 10.1.2.40, labels: {app: a}, listen: [\"tcp/8080\"]}"}))
	if a == nil || a.Pod("pod1").Identity != a.Pod("pod4").Identity {
		t.Fatal("pods with the same labels must share an identity")
	}
	b, err := Parse("b.yaml", reversedPods())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := Parse("c.yaml", mutate(nil))
	for _, p := range c.Pods {
		if b.Pod(p.Name).Identity != p.Identity {
			t.Errorf("%s: identity depends on pod order", p.Name)
		}
	}
}

func TestIdentityCollisionsResolved(t *testing.T) {
	// With 2000 label sets in 65280 identities collisions are certain
	// (birthday bound); all must still get distinct, in-range identities,
	// and every set whose preferred identity is free keeps it.
	var b strings.Builder
	b.WriteString("name: ids\nrouter: {name: tor, asn: 65000}\nnodes:\n  - {name: n1, asn: 65001, podCIDR: 10.0.0.0/8, uplink: {address: 192.168.0.2/24, gateway: 192.168.0.1}}\npods:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  - {name: p%d, node: n1, ip: 10.0.%d.%d, labels: {app: a%d}}\n", i, i/200+1, i%200+2, i)
	}
	top, err := Parse("ids.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Identity]string{}
	preferred := map[Identity]int{}
	for _, p := range top.Pods {
		preferred[IdentityOf(p.Labels)]++
	}
	moved := 0
	for _, p := range top.Pods {
		if p.Identity < MinLabelIdentity {
			t.Errorf("%s: identity %d out of range", p.Name, p.Identity)
		}
		if prev, dup := seen[p.Identity]; dup {
			t.Errorf("%s and %s share identity %d", p.Name, prev, p.Identity)
		}
		seen[p.Identity] = p.Name
	}
	for _, p := range top.Pods {
		if want := IdentityOf(p.Labels); p.Identity != want {
			moved++
			if preferred[want] < 2 && seen[want] == "" {
				t.Errorf("%s moved from a free identity %d", p.Name, want)
			}
		}
	}
	if moved == 0 {
		t.Log("no collision among 2000 label sets (unexpected but harmless)")
	}
}

// Label sets that prefer the same identity at the top of the range: the
// second (by label string) takes the next free one, 65535 still counting,
// and past it the range wraps to 256. The label values were found by
// search to prefer 65534 and 65535.
func TestIdentityCollisionsAtTheTop(t *testing.T) {
	for _, tc := range []struct {
		a, b         string // a < b
		wantA, wantB Identity
	}{
		{"v228462", "v81736", 65534, 65535},
		{"v26056", "v57407", 65535, MinLabelIdentity},
	} {
		if IdentityOf(Labels{"app": tc.a}) != tc.wantA || IdentityOf(Labels{"app": tc.b}) != tc.wantA {
			t.Fatalf("app=%s and app=%s no longer prefer %d; search new values", tc.a, tc.b, tc.wantA)
		}
		top, err := Parse("t.yaml", mutate(map[int]string{
			13: "  - {name: pod1, node: node1, ip: 10.1.1.10, labels: {app: " + tc.b + "}}",
			14: "  - {name: pod4, node: node2, ip: 10.1.2.40, labels: {app: " + tc.a + "}, listen: [\"tcp/8080\"]}",
			18: "  - endpointSelector: {matchLabels: {app: " + tc.a + "}}",
			20: "      - fromEndpoints: [{matchLabels: {app: " + tc.b + "}}]",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := top.Pod("pod4").Identity, top.Pod("pod1").Identity; a != tc.wantA || b != tc.wantB {
			t.Errorf("app=%s got %d, app=%s got %d; want %d and %d", tc.a, a, tc.b, b, tc.wantA, tc.wantB)
		}
	}
}

func TestIdentityAnyString(t *testing.T) {
	if s := IdentityAny.String(); s != "0 (any)" {
		t.Errorf("IdentityAny.String() = %q", s)
	}
}
