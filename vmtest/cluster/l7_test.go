package cluster

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

func l7Event(typ, verdict string, status int) nodeapi.L7Event {
	return nodeapi.L7Event{
		Node: "node2", Time: time.Date(2026, 11, 23, 10, 31, 15, 0, time.UTC), Type: typ, Verdict: verdict,
		Direction: "ingress", Endpoint: "pod4", ProxyPort: 8080,
		Src: netip.MustParseAddrPort("10.1.1.10:40000"), Dst: netip.MustParseAddrPort("10.1.2.40:8080"),
		SrcName: "pod1", DstName: "pod4", SrcIdentity: 38586, DstIdentity: 19216, Protocol: "HTTP/1.1",
		Method: "GET", Host: "10.1.2.40:8080", Path: "/private", URL: "http://10.1.2.40:8080/private",
		Rule: "port 8080/TCP: no HTTP rule matches", Status: status,
	}
}

// The agent's L7 record reaches subscribers as an EventL7, and the
// record's JSON is the contract between agent, hub and remote clients.
func TestHubL7Event(t *testing.T) {
	h := newHub(slog.New(slog.DiscardHandler))
	got := make(chan Event, 4)
	s := &subscriber{wake: make(chan struct{}, 1), done: make(chan struct{}), fn: func(e Event) { got <- e }}
	go s.run()
	h.subs[s] = struct{}{}
	rec := l7Event(nodeapi.L7Response, nodeapi.L7Dropped, 403)
	rec.Reason, rec.Latency = "Policy denied", 3*time.Millisecond
	data, err := control.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"node":"node2","time":"2026-11-23T10:31:15Z","type":"http-response","verdict":"DROPPED","reason":"Policy denied",` +
		`"direction":"ingress","endpoint":"pod4","proxy_port":8080,"src":"10.1.1.10:40000","dst":"10.1.2.40:8080",` +
		`"src_name":"pod1","dst_name":"pod4","src_identity":38586,"dst_identity":19216,"protocol":"HTTP/1.1",` +
		`"method":"GET","host":"10.1.2.40:8080","path":"/private","url":"http://10.1.2.40:8080/private",` +
		`"rule":"port 8080/TCP: no HTTP rule matches","status":403,"latency":3000000}`
	if string(data) != want {
		t.Errorf("record JSON\n%s\nwant\n%s", data, want)
	}
	h.agentEvent(&control.Message{Event: nodeapi.EventL7, Data: data})
	h.agentEvent(&control.Message{Event: nodeapi.EventL7, Data: []byte(`"bad"`)}) // logged, dropped
	var e Event
	select {
	case e = <-got:
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
	h.close()
	if e.Kind != EventL7 || e.Node() != "node2" || e.L7 == nil || *e.L7 != rec || e.Time.IsZero() {
		t.Fatalf("event %+v", e)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || back.L7 == nil || *back.L7 != rec {
		t.Errorf("round trip %s: %+v %v", b, back, err)
	}
}

func TestL7Observations(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 31, 15, 0, time.UTC)
	if obs := (Event{Kind: EventL7, Time: at, L7: ptr(l7Event(nodeapi.L7Request, nodeapi.L7Forwarded, 0))}).Observations(); len(obs) != 0 {
		t.Errorf("a request record gives %+v", obs)
	}
	for _, tc := range []struct {
		verdict, reason string
		status          int
		want            journey.Verdict
	}{
		{nodeapi.L7Forwarded, "", 200, journey.Forwarded},
		{nodeapi.L7Dropped, "Policy denied", 403, journey.Dropped},
		{nodeapi.L7Error, "upstream: connection refused", 502, journey.Dropped},
	} {
		rec := l7Event(nodeapi.L7Response, tc.verdict, tc.status)
		rec.Reason = tc.reason
		obs := Event{Kind: EventL7, Time: at, L7: &rec}.Observations()
		if len(obs) != 1 {
			t.Fatalf("%s: %d observations", tc.verdict, len(obs))
		}
		o := obs[0]
		h := o.Hop
		if h.Node != "node2" || h.Point != journey.Proxy || h.Device != "proxy:8080" || h.IPSrc != "10.1.1.10" || h.IPDst != "10.1.2.40" ||
			h.Sport != 40000 || h.Dport != 8080 || h.Proto != "tcp" || h.Verdict != tc.want || h.DropReason != tc.reason ||
			h.L7 == nil || *h.L7 != (journey.L7{Method: "GET", Path: "/private", Status: tc.status, Rule: rec.Rule}) ||
			!o.HasKey || o.Key.Src != rec.Src || o.Key.Dst != rec.Dst || !o.Time.Equal(at) {
			t.Errorf("%s: observation %+v (l7 %+v)", tc.verdict, o, h.L7)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The agents take the topology as Encode's text: L7 rules must survive it.
func TestEncodeKeepsL7Rules(t *testing.T) {
	text := `name: l7x
router: {name: tor, asn: 65000}
nodes:
  - {name: node1, asn: 65001, podCIDR: 10.1.1.0/24, uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1}}
pods:
  - {name: pod1, node: node1, ip: 10.1.1.10, labels: {app: a}}
  - {name: pod2, node: node1, ip: 10.1.1.20, labels: {app: b}}
policies:
  - name: p
    endpointSelector: {matchLabels: {app: b}}
    ingress:
      - fromEndpoints: [{matchLabels: {app: a}}]
        toPorts:
          - ports: [{port: "8080", protocol: TCP}]
            rules:
              http:
                - {method: "GET|HEAD", path: "/public/.*", host: "shop\\.example", headers: ["X-Token: s", X-Trace]}
                - {}
`
	top, err := topologies.Parse("l7x.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := Encode(top)
	if err != nil {
		t.Fatal(err)
	}
	back, err := topologies.Parse("l7x.yaml", enc)
	if err != nil {
		t.Fatalf("%v\n%s", err, enc)
	}
	for _, top := range []*topologies.Topology{top, back} {
		ep, err := top.EndpointPolicy("pod2")
		if err != nil {
			t.Fatal(err)
		}
		port := ep.L7(topologies.Ingress, 8080)
		if port == nil || len(port.Allows) != 1 || len(port.Allows[0].HTTP) != 2 {
			t.Fatalf("L7 port %+v in\n%s", port, enc)
		}
		h := port.Allows[0].HTTP[0]
		if h.String() != `GET|HEAD /public/.* host shop\.example header X-Token: s header X-Trace` || port.Allows[0].HTTP[1].String() != "* *" {
			t.Errorf("rules %q %q", h.String(), port.Allows[0].HTTP[1].String())
		}
	}
	if again, err := Encode(back); err != nil || string(again) != string(enc) {
		t.Errorf("encoding not stable: %v\n%s\n---\n%s", err, enc, again)
	}
}
