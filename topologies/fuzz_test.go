package topologies

import (
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic and that every rejection
// is located. Run it with: go test -run '^$' -fuzz FuzzParse -fuzztime 30s ./topologies
func FuzzParse(f *testing.F) {
	for _, name := range Names() {
		data, err := builtin.ReadFile(name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(mutate(nil))
	for _, s := range []string{
		"", "---\n", "name: [", "a: &x [*x]", "- - - -", "{name: t, nodes: [{}]}",
		"name: t\nrouter: {name: tor, asn: 1}\nnodes: [{name: n, asn: 2, podCIDR: 10.0.0.0/8, uplink: {address: 1.1.1.1/8, gateway: 1.0.0.1}}]\n",
		"policies: [{endpointSelector: {}, ingress: [{}], egress: [{toEntities: [all]}]}]",
		"nodes: !!binary aGVsbG8=", "name: !!int 3", "\t", "\xff\xfe", "? [a]\n: b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse("f.yaml", data)
		if err != nil {
			if strings.Contains(err.Error(), "internal error while parsing") {
				t.Fatalf("recovered panic: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "f.yaml:") {
				t.Fatalf("error without location: %v", err)
			}
			return
		}
		// Accepted topologies are usable end to end.
		for _, p := range top.Pods {
			if _, err := top.EndpointPolicy(p.Name); err != nil {
				t.Fatal(err)
			}
			if p.LXCName == "" || p.EndpointID == 0 || p.MAC.IsZero() {
				t.Fatalf("pod %s not derived", p.Name)
			}
			for _, q := range top.Pods {
				if _, err := Trace(top, p.Name, q.IP.String(), 80, TCP); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, s := range top.Services {
			if _, err := Trace(top, "8.8.8.8", s.VIP.String(), s.Port, s.Protocol); err != nil {
				t.Fatal(err)
			}
		}
	})
}
