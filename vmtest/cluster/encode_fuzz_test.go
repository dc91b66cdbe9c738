package cluster

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/fuzzcorpus"
	"github.com/hoplab/hoplab/topologies"
)

// FuzzEncode checks the topology encoder against the loader: every
// topology Parse accepts encodes (or is refused only for a policy named
// like another policy's default name), the text parses back to an equal
// topology (positions aside: the same nodes, pods, derived MACs, endpoint
// IDs and identities, services, policies, datapath policy entries and
// warnings), and encoding that gives the same text. The node agents and
// Update receive topologies as this text. The committed seeds
// (testdata/fuzz/FuzzEncode) are the shipped topologies and variants
// using every key; TestEncodeCorpus writes them.
//
//	go test -run '^$' -fuzz '^FuzzEncode$' -fuzztime 30s ./vmtest/cluster
func FuzzEncode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := topologies.Parse("f.yaml", data)
		if err != nil {
			return // FuzzParse checks rejections
		}
		text, err := Encode(top)
		if err != nil {
			if !strings.Contains(err.Error(), "a name the loader gives policy") {
				t.Fatalf("encode: %v", err)
			}
			return
		}
		back, err := topologies.Parse("f.yaml", text)
		if err != nil {
			t.Fatalf("encoded topology does not parse: %v\n%s", err, text)
		}
		if a, b := topologyJSON(t, top), topologyJSON(t, back); a != b {
			t.Fatalf("round trip changed the topology:\n%s\n---\n%s\n--- encoded as\n%s", a, b, text)
		}
		for _, p := range top.Pods {
			a, err1 := top.EndpointPolicy(p.Name)
			b, err2 := back.EndpointPolicy(p.Name)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if x, y := layoutFree(t, a), layoutFree(t, b); x != y {
				t.Fatalf("pod %s: policy %+v, after the round trip %+v", p.Name, a, b)
			}
		}
		again, err := Encode(back)
		if err != nil || !bytes.Equal(again, text) {
			t.Fatalf("encoding is not stable (%v):\n%s\n---\n%s", err, text, again)
		}
	})
}

// topologyJSON renders t without what the file's layout decides
// (positions, the file name) and with empty lists and maps as absent, for
// comparing topologies.
func topologyJSON(t *testing.T, top *topologies.Topology) string {
	t.Helper()
	var msgs []string
	for _, w := range top.Warnings {
		msgs = append(msgs, w.Msg)
	}
	return layoutFree(t, map[string]any{"topology": top, "warnings": msgs})
}

// layoutFree is v as indented JSON without positions, file names and
// warnings (keys "...Pos", "pos", "File", "Warnings") and without empty
// lists and maps.
func layoutFree(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var g any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(withoutLayout(g), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func withoutLayout(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			if strings.HasSuffix(strings.ToLower(k), "pos") || k == "File" || k == "Warnings" {
				continue
			}
			if e = withoutLayout(e); e != nil {
				out[k] = e
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		if len(v) == 0 {
			return nil
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = withoutLayout(e)
		}
		return out
	}
	return v
}

// encodeSeeds are variants of pod-to-service that use the keys the shipped
// topologies leave out.
var encodeSeeds = map[string]string{
	"tunnel-bonds": `name: t
kernel: "6.12.3"
mode: tunnel
router: {name: spine, asn: 4200000000}
nodes:
  - {name: a, asn: 65001, podCIDR: 10.1.1.0/24, uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1, bond: active-backup}}
  - {name: b, asn: 65002, podCIDR: 10.1.2.0/24, uplink: {address: 10.255.2.12/24, gateway: 10.255.2.1, bond: 802.3ad}}
pods:
  - {name: p1, node: a, ip: 10.1.1.10, mac: "02:00:00:00:00:01", labels: {app: web, "k8s.io/tier": front-end}, listen: ["http/80", "udp/53"]}
  - {name: p2, node: b, ip: 10.1.2.20, labels: {app: db}, listen: ["tcp/5432"]}
services:
  - {name: dns, vip: 10.224.0.10, port: 53, protocol: udp, nodePort: 30053, backends: ["p1:53"]}
  - {name: none, vip: 10.224.0.11, port: 80, backends: []}
`,
	"policies": `name: pol
router: {name: tor, asn: 65000}
nodes:
  - {name: n1, asn: 65001, podCIDR: 10.1.1.0/24, uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1}}
pods:
  - {name: a, node: n1, ip: 10.1.1.10, labels: {app: a}, listen: ["tcp/8080"]}
  - {name: b, node: n1, ip: 10.1.1.20, labels: {app: b}}
policies:
  - endpointSelector: {matchLabels: {app: a}}
    description: "unnamed: gets policies[0]"
    ingress:
      - fromEndpoints: [{matchLabels: {app: b}}, {}]
        toPorts: [{ports: [{port: "8080", protocol: ANY}, {port: "53", protocol: UDP}]}]
      - fromEntities: [world, host]
      - {}
  - name: egress-only
    endpointSelector: {}
    egress:
      - toEntities: [all]
      - toEndpoints: [{matchLabels: {app: a}}]
        toPorts: [{ports: [{port: "8080"}]}]
  - name: nothing
    endpointSelector: {matchLabels: {app: ghost}}
    ingress: []
`,
}

// TestEncodeCorpus writes testdata/fuzz/FuzzEncode (with
// HOPLAB_FUZZ_CORPUS=1): the shipped topologies and encodeSeeds.
func TestEncodeCorpus(t *testing.T) {
	var seeds []fuzzcorpus.Seed
	for _, name := range topologies.Names() {
		data, err := os.ReadFile(filepath.Join("..", "..", "topologies", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, fuzzcorpus.Seed{Name: name, Values: []any{data}})
	}
	for name, text := range encodeSeeds {
		if _, err := topologies.Parse(name, []byte(text)); err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		seeds = append(seeds, fuzzcorpus.Seed{Name: name, Values: []any{[]byte(text)}})
	}
	fuzzcorpus.Update(t, "FuzzEncode", seeds)
}
