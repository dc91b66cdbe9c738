package topologies

import (
	"errors"
	"fmt"
	"testing"
)

func mustBuiltin(t *testing.T, name string) *Topology {
	t.Helper()
	top, err := Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func entryKeys(es []PolicyEntry) []PolicyKey {
	var out []PolicyKey
	for _, e := range es {
		out = append(out, e.PolicyKey)
	}
	return out
}

func TestPolicyCompilationPerLevel(t *testing.T) {
	top := mustBuiltin(t, "policy")
	id := func(pod string) Identity { return top.Pod(pod).Identity }
	frontend, client, backend := id("pod1"), id("pod2"), id("pod4")
	for _, tc := range []struct {
		pod             string
		ingress, egress bool
		want            []PolicyKey
		level           Level
	}{
		{"pod1", false, false, nil, 0},
		{"pod4", true, false, sortedKeys(PolicyKey{Ingress, frontend, 8080, TCP}, PolicyKey{Ingress, client, 8080, TCP}), LevelL3L4},
		{"pod5", true, false, []PolicyKey{{Ingress, 0, 9090, TCP}}, LevelL4Only},
		{"pod6", true, false, []PolicyKey{{Ingress, frontend, 0, Any}}, LevelL3Only},
		{"pod7", true, false, []PolicyKey{{Ingress, 0, 0, Any}}, LevelAllowAll},
		{"pod8", true, false, nil, 0},
		{"pod2", false, true, []PolicyKey{{Egress, backend, 8080, TCP}}, LevelL3L4},
	} {
		t.Run(tc.pod, func(t *testing.T) {
			ep, err := top.EndpointPolicy(tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			if ep.IngressEnforced != tc.ingress || ep.EgressEnforced != tc.egress {
				t.Errorf("enforcement ingress=%v egress=%v, want %v %v", ep.IngressEnforced, ep.EgressEnforced, tc.ingress, tc.egress)
			}
			got := entryKeys(ep.Entries)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("entries %v, want %v", got, tc.want)
			}
			for _, k := range got {
				if k.Level() != tc.level {
					t.Errorf("%v at level %v, want %v", k, k.Level(), tc.level)
				}
			}
			for _, e := range ep.Entries {
				if len(e.Rules) == 0 || e.Rules[0].Pos.Line == 0 {
					t.Errorf("%v has no rule reference", e.PolicyKey)
				}
			}
			entries, _ := top.PolicyEntries(tc.pod)
			if fmt.Sprint(entryKeys(entries)) != fmt.Sprint(got) {
				t.Error("PolicyEntries disagrees with EndpointPolicy")
			}
		})
	}
	if _, err := top.EndpointPolicy("nope"); !errors.Is(err, ErrUnknownPod) {
		t.Errorf("unknown pod: %v", err)
	}
}

func sortedKeys(ks ...PolicyKey) []PolicyKey {
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if keyLess(ks[j], ks[i]) {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func TestLookupOrder(t *testing.T) {
	// One endpoint holding an entry at every level: the most specific wins.
	ep := &EndpointPolicy{IngressEnforced: true, Entries: []PolicyEntry{
		{PolicyKey: PolicyKey{Ingress, 0, 0, 0}},
		{PolicyKey: PolicyKey{Ingress, 0, 80, TCP}},
		{PolicyKey: PolicyKey{Ingress, 300, 0, 0}},
		{PolicyKey: PolicyKey{Ingress, 300, 80, TCP}},
	}}
	for _, tc := range []struct {
		remote Identity
		port   uint16
		proto  Protocol
		want   Level
	}{
		{300, 80, TCP, LevelL3L4},
		{301, 80, TCP, LevelL4Only},
		{300, 81, TCP, LevelL3Only},
		{300, 80, UDP, LevelL3Only},
		{301, 81, TCP, LevelAllowAll},
		{301, 0, ICMP, LevelAllowAll},
	} {
		d := ep.Lookup(Ingress, tc.remote, tc.port, tc.proto)
		if !d.Allowed || d.Level != tc.want {
			t.Errorf("%d %d/%s: %v allowed=%v, want %v", tc.remote, tc.port, tc.proto, d.Level, d.Allowed, tc.want)
		}
	}
	if d := ep.Lookup(Egress, 300, 80, TCP); !d.Allowed || d.Level != LevelEnforcementOff {
		t.Errorf("egress not enforced: %+v", d)
	}
	ep.Entries = ep.Entries[1:]
	if d := ep.Lookup(Ingress, 301, 81, TCP); d.Allowed || d.Level != LevelDefaultDeny || len(d.Tried) != 4 {
		t.Errorf("want default deny after 4 lookups: %+v", d)
	}
}

func TestPolicyShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule []string
		want string
		enf  bool
	}{
		{"toPorts ANY expands to tcp and udp", []string{"      - toPorts: [{ports: [{port: 53}]}]"}, "[{ingress 0 53 tcp} {ingress 0 53 udp}]", true},
		{"empty rule denies all", []string{"      - {}"}, "[]", true},
		{"empty ingress list enforces nothing", []string{"    ingress: []"}, "[]", false},
		{"wildcard selector with ports is L4-only", []string{"      - fromEndpoints: [{}]", "        toPorts: [{ports: [{port: 80, protocol: UDP}]}]"}, "[{ingress 0 80 udp}]", true},
		{"entities", []string{"      - fromEntities: [host, world, remote-node]"}, "[{ingress 1 0 any} {ingress 2 0 any} {ingress 6 0 any}]", true},
		{"entity all is allow-all", []string{"      - fromEntities: [all]"}, "[{ingress 0 0 any}]", true},
		{"k8s: prefix in selector", []string{"      - fromEndpoints: [{matchLabels: {'k8s:app': a}}]"}, "[{ingress IDA 0 any}]", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repl := map[int]string{20: "", 21: ""}
			if tc.rule[0] == "    ingress: []" {
				repl[19] = tc.rule[0]
			} else {
				for i, l := range tc.rule {
					repl[20+i] = l
				}
			}
			top, err := Parse("t.yaml", mutate(repl))
			if err != nil {
				t.Fatal(err)
			}
			ep, _ := top.EndpointPolicy("pod4")
			got := "["
			for i, e := range ep.Entries {
				if i > 0 {
					got += " "
				}
				id := fmt.Sprint(uint32(e.RemoteIdentity))
				if e.RemoteIdentity == top.Pod("pod1").Identity {
					id = "IDA"
				}
				got += fmt.Sprintf("{%s %s %d %s}", e.Direction, id, e.Port, e.Proto)
			}
			got += "]"
			if got != tc.want || ep.IngressEnforced != tc.enf {
				t.Errorf("entries %s enforced %v, want %s %v", got, ep.IngressEnforced, tc.want, tc.enf)
			}
		})
	}
}

// A policy map is listed in key order — direction, identity, port,
// protocol — and every entry is found again by its key, also when entries
// of both directions share identity, port and protocol.
func TestPolicyEntriesOrderAndLookup(t *testing.T) {
	top, err := Parse("t.yaml", mutate(map[int]string{
		18: "  - endpointSelector: {matchLabels: {app: b}}",
		19: "    ingress:",
		20: "      - fromEndpoints: [{matchLabels: {app: a}}]",
		21: "        toPorts: [{ports: [{port: \"8080\", protocol: TCP}, {port: \"53\", protocol: UDP}, {port: \"53\", protocol: TCP}]}]",
		22: "      - toPorts: [{ports: [{port: \"9000\", protocol: TCP}]}]",
		23: "    egress:",
		24: "      - toEndpoints: [{matchLabels: {app: a}}]",
		25: "        toPorts: [{ports: [{port: \"8080\", protocol: TCP}, {port: \"53\", protocol: UDP}]}]",
	}))
	if err != nil {
		t.Fatal(err)
	}
	ep, err := top.EndpointPolicy("pod4")
	if err != nil {
		t.Fatal(err)
	}
	less := func(a, b PolicyKey) bool {
		switch {
		case a.Direction != b.Direction:
			return a.Direction < b.Direction
		case a.RemoteIdentity != b.RemoteIdentity:
			return a.RemoteIdentity < b.RemoteIdentity
		case a.Port != b.Port:
			return a.Port < b.Port
		}
		return a.Proto < b.Proto
	}
	if len(ep.Entries) != 6 {
		t.Fatalf("entries %v, want 6", ep.Entries)
	}
	for i, e := range ep.Entries {
		if i > 0 && !less(ep.Entries[i-1].PolicyKey, e.PolicyKey) {
			t.Errorf("entries out of order at %d: %v then %v", i, ep.Entries[i-1].PolicyKey, e.PolicyKey)
		}
		if f := ep.find(e.PolicyKey); f == nil || f.PolicyKey != e.PolicyKey {
			t.Errorf("find(%v) = %v", e.PolicyKey, f)
		}
	}
	if f := ep.find(PolicyKey{Direction: ep.Entries[0].Direction, RemoteIdentity: 1, Port: 1, Proto: TCP}); f != nil {
		t.Errorf("found an entry that is not there: %v", f)
	}
}
