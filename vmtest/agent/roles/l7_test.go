package roles

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// sameNodeL7 is the shipped same-node topology with pod2 (app=backend)
// admitting frontend on 8080/TCP, with HTTP rules when rules is not "".
func sameNodeL7(t *testing.T, rules string) string {
	ports := `toPorts: [{ports: [{port: "8080", protocol: TCP}]}]`
	if rules != "" {
		ports = `toPorts: [{ports: [{port: "8080", protocol: TCP}], rules: {http: [` + rules + `]}}]`
	}
	return topologyText(t, "same-node") + `policies:
  - name: backend-l7
    endpointSelector: {matchLabels: {app: backend}}
    ingress:
      - fromEndpoints: [{matchLabels: {app: frontend}}]
        ` + ports + `
`
}

func l7Events(ev *events) []nodeapi.L7Event {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var out []nodeapi.L7Event
	for _, e := range ev.list {
		if l, ok := e.(nodeapi.L7Event); ok {
			out = append(out, l)
		}
	}
	return out
}

// TestL7ProxyOnTheHost runs the whole L7 path on the host kernel: pod1 →
// pod2:8080 on one node, pod2's ingress rule sends the flow to the proxy
// (to-container marks it, the policy routing delivers it to the proxy's
// transparent socket), which forwards GET /public/a (200, from pod2's
// server) and answers GET /private itself (403 Access denied). Records,
// to-proxy traces, the CT entry's proxy port, the policy map's and the L7
// counters show it.
func TestL7ProxyOnTheHost(t *testing.T) {
	n, top, ev := testNode(t, "same-node-l7.yaml", sameNodeL7(t, `{method: GET, path: "/public/.*"}`), "node1")
	ctx := context.Background()
	if _, err := n.Watch(ctx, nodeapi.Watch{Datapath: true}); err != nil {
		t.Fatal(err)
	}
	pod2 := top.Pod("pod2")
	get := func(path string) nodeapi.ClientResult {
		res, err := n.Client(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.1.1.20:8080", Path: path})
		must(t, err)
		return res
	}

	t.Log("GET /public/a: forwarded by the proxy, answered by pod2's server")
	o := get("/public/a").Outcomes[0]
	if !o.OK || !strings.HasPrefix(o.Reply, "hoplab pod2 10.1.1.20:8080 from ") {
		t.Fatalf("outcome %+v", o)
	}
	t.Logf("reply %q in %v", o.Reply, o.RTT)
	t.Log("GET /private: 403 Access denied from the proxy")
	o = get("/private").Outcomes[0]
	if o.OK || o.Error != "403 Forbidden" || o.Reply != "Access denied\r\n" {
		t.Fatalf("outcome %+v", o)
	}

	resp := ev.wait(t, "the 403's record", 3*time.Second, func(e any) bool {
		l, ok := e.(nodeapi.L7Event)
		return ok && l.Type == nodeapi.L7Response && l.Status == 403
	}).(nodeapi.L7Event)
	if resp.Verdict != nodeapi.L7Dropped || resp.Reason != "Policy denied" || resp.ProxyPort != 8080 || resp.Endpoint != "pod2" ||
		resp.SrcName != "pod1" || resp.DstName != "pod2" || resp.Dst.String() != "10.1.1.20:8080" || resp.Node != "node1" ||
		!strings.HasPrefix(resp.Rule, "port 8080/TCP: no HTTP rule of") {
		t.Errorf("denied record %+v", resp)
	}
	var types []string
	for _, l := range l7Events(ev) {
		types = append(types, l.Type+" "+l.Verdict+" "+l.Path)
	}
	if want := []string{"http-request FORWARDED /public/a", "http-response FORWARDED /public/a", "http-request DROPPED /private", "http-response DROPPED /private"}; !slices.Equal(types, want) {
		t.Errorf("records %q, want %q", types, want)
	}
	tr := ev.wait(t, "a to-proxy trace", 3*time.Second, func(e any) bool {
		d, ok := e.(nodeapi.DatapathEvent)
		return ok && d.Type == nodeapi.EventTrace && d.Point == "proxy"
	}).(nodeapi.DatapathEvent)
	if tr.CTState != nodeapi.CTNew || tr.DstIdentity != uint32(pod2.Identity) || !strings.Contains(tr.Summary, "to-proxy") {
		t.Errorf("to-proxy trace %+v", tr)
	}
	for _, e := range ev.list {
		if d, ok := e.(nodeapi.DatapathEvent); ok && d.Point == "to-container" && d.Type == nodeapi.EventTrace {
			t.Errorf("a proxied flow reached pod2's lxc: %+v", d)
		}
	}

	rows, err := n.CTList(ctx)
	must(t, err)
	proxied := 0
	for _, r := range rows {
		if r.Direction == "IN" && r.Dst.String() == "10.1.1.20:8080" {
			if r.ProxyPort != 8080 {
				t.Errorf("CT %s: proxy port %d", r.Tuple, r.ProxyPort)
			}
			proxied++
		}
	}
	if proxied != 2 {
		t.Errorf("%d proxied IN entries in %+v", proxied, rows)
	}
	pol, err := n.PolicyGet(ctx, nodeapi.PolicyGet{Endpoint: "pod2"})
	must(t, err)
	if len(pol) != 1 || pol[0].ProxyPort != 8080 || pol[0].Port != 8080 {
		t.Errorf("policy %+v", pol)
	}
	m, err := n.Metrics(ctx)
	must(t, err)
	var l7 []string
	for _, r := range m {
		if r.L7 {
			l7 = append(l7, fmt.Sprintf("%s %s %s %d %d", r.Reason, r.Verdict, r.Direction, r.Status, r.Packets))
		}
	}
	if want := []string{"L7 denied DROPPED INGRESS 403 1", "L7 forwarded FORWARDED INGRESS 200 1"}; !slices.Equal(l7, want) {
		t.Errorf("L7 metrics %q, want %q", l7, want)
	}
	if _, err := n.Reset(ctx, nodeapi.Reset{}); err != nil {
		t.Fatal(err)
	}
	if m, _ := n.Metrics(ctx); slices.ContainsFunc(m, func(r nodeapi.MetricRow) bool { return r.L7 }) {
		t.Errorf("L7 metrics after reset: %+v", m)
	}
}

// TestL7RulesChangeAtRunTime: node-update adds HTTP rules to the port of
// an established L4 flow (an http-stream of GET / that the new rules would
// deny): the stream keeps all its answers (its CT entry names no proxy),
// a new connection's GET / is denied by the proxy, and a second update
// changes the rules the proxy applies to the next request.
func TestL7RulesChangeAtRunTime(t *testing.T) {
	n, _, _ := testNode(t, "same-node-l7.yaml", sameNodeL7(t, ""), "node1")
	ctx := context.Background()
	stream := make(chan nodeapi.ClientResult, 1)
	go func() {
		res, err := n.Client(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTPStream, Dst: "10.1.1.20:8080", Duration: 2 * time.Second})
		if err != nil {
			t.Error(err)
		}
		stream <- res
	}()
	time.Sleep(300 * time.Millisecond) // the stream's connection is up

	t.Log("update: GET /public/.* only on 8080")
	res, err := n.Update(ctx, nodeapi.Update{Topology: sameNodeL7(t, `{method: GET, path: "/public/.*"}`), File: "same-node-l7.yaml"})
	must(t, err)
	t.Logf("changes %q", res.Changes)
	for _, want := range []string{"l7: +pod2 ingress 8080/TCP: ", "proxy port 0 -> 8080"} {
		if !slices.ContainsFunc(res.Changes, func(c string) bool { return strings.Contains(c, want) }) {
			t.Errorf("no change %q in %q", want, res.Changes)
		}
	}
	get := func(path string) nodeapi.ClientResult {
		res, err := n.Client(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.1.1.20:8080", Path: path})
		must(t, err)
		return res
	}
	if o := get("/").Outcomes[0]; o.Error != "403 Forbidden" {
		t.Errorf("a new connection's GET /: %+v", o)
	}
	if o := get("/public/x").Outcomes[0]; !o.OK {
		t.Errorf("GET /public/x: %+v", o)
	}
	s := <-stream
	if o := s.Outcomes[0]; !o.OK || o.Requests < 5 {
		t.Errorf("the established stream across the update: %+v", o)
	} else {
		t.Logf("stream: %d requests, longest wait %v", o.Requests, o.MaxWait)
	}

	t.Log("update: GET / allowed too, the proxy keeps listening")
	res, err = n.Update(ctx, nodeapi.Update{Topology: sameNodeL7(t, `{method: GET, path: "/public/.*"}, {method: GET, path: "/"}`), File: "same-node-l7.yaml"})
	must(t, err)
	if len(res.Changes) != 2 || !strings.HasPrefix(res.Changes[0], "l7: +") || !strings.HasPrefix(res.Changes[1], "l7: -") {
		t.Errorf("changes %q: want only the rules' lines", res.Changes)
	}
	if o := get("/").Outcomes[0]; !o.OK {
		t.Errorf("GET / after the second update: %+v", o)
	}
	t.Log("update: the rules removed: the proxy stops listening, new flows go straight to pod2")
	res, err = n.Update(ctx, nodeapi.Update{Topology: sameNodeL7(t, ""), File: "same-node-l7.yaml"})
	must(t, err)
	if !slices.Contains(res.Changes, "l7: proxy stops listening on 8080") {
		t.Errorf("changes %q", res.Changes)
	}
	if o := get("/private").Outcomes[0]; !o.OK {
		t.Errorf("GET /private without rules: %+v", o)
	}
}
