package topologies

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// l7Base is base with pod4's ingress rule on 8080 given HTTP rules from
// line 22 on.
func l7Base(rules ...string) map[int]string {
	repl := map[int]string{
		21: "        toPorts:",
		22: "          - ports: [{port: \"8080\", protocol: TCP}]",
		23: "            rules:",
	}
	for i, r := range rules {
		repl[24+i] = r
	}
	return repl
}

func TestL7ParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		repl map[int]string
		want string
	}{
		{"bad path regexp", l7Base("              http: [{method: GET, path: \"/a(\"}]"),
			`t.yaml:24:42: http path: "/a(" is not a valid regular expression: missing closing ): ` + "`^(?:/a()$`"},
		{"bad method regexp", l7Base("              http:", "                - method: \"[\""),
			`t.yaml:25:27: http method: "[" is not a valid regular expression`},
		{"bad host regexp", l7Base("              http: [{host: \"*.example\"}]"),
			`t.yaml:24:29: http host: "*.example" is not a valid regular expression`},
		{"empty http list", l7Base("              http: []"), `t.yaml:24:21: http: an empty list allows no request`},
		{"rules without http", l7Base("              {}"), `t.yaml:24:15: rules: missing required key "http"`},
		{"unknown http key", l7Base("              http: [{method: GET, verb: GET}]"),
			`t.yaml:24:36: http rule: unknown key "verb" (known keys: method, path, host, headers)`},
		{"headerMatches", l7Base("              http: [{headerMatches: []}]"),
			`t.yaml:24:23: http rule: "headerMatches" is not supported by hoplab: use headers: ["Name: value"]`},
		{"bad header name", l7Base("              http: [{headers: [\"X Token: a\"]}]"),
			`t.yaml:24:33: header: "X Token: a": want "Name" or "Name: value" with a valid header name`},
		{"dns rules", l7Base("              dns: []"), `t.yaml:24:15: rules: "dns" is not supported by hoplab: only HTTP rules are modelled`},
		{"rules on a UDP port", map[int]string{21: "        toPorts: [{ports: [{port: 53, protocol: UDP}], rules: {http: [{}]}}]"},
			`t.yaml:21:28: port 53/UDP: L7 rules apply to TCP ports only; write protocol: TCP`},
		{"rules on ANY", map[int]string{21: "        toPorts: [{ports: [{port: 80}], rules: {http: [{}]}}]"},
			`t.yaml:21:28: port 80/ANY: L7 rules apply to TCP ports only`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, err := Parse("t.yaml", mutate(tc.repl))
			if err == nil {
				t.Fatalf("accepted; want error containing %q (warnings %v)", tc.want, top.Warnings)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant substring:\n%s", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
		})
	}
}

func TestL7ParseRules(t *testing.T) {
	top, err := Parse("t.yaml", mutate(l7Base(
		"              http:",
		"                - {method: \"GET|HEAD\", path: \"/public/.*\"}",
		"                - {method: POST, path: /api/orders, host: \"shop\\\\.example\", headers: [\"X-Token: s3cret\", X-Trace]}",
		"                - {}",
	)))
	if err != nil {
		t.Fatal(err)
	}
	rules := top.Policies[0].Ingress[0].ToPorts[0].Rules
	if rules == nil || len(rules.HTTP) != 3 || rules.Pos.Line != 24 {
		t.Fatalf("rules %+v", rules)
	}
	h := rules.HTTP[1]
	if h.Method != "POST" || h.Path != "/api/orders" || h.Host != `shop\.example` || h.Pos.Line != 26 ||
		len(h.Headers) != 2 || h.Headers[0] != (HeaderMatch{Name: "X-Token", Value: "s3cret", HasValue: true}) ||
		h.Headers[1] != (HeaderMatch{Name: "X-Trace"}) {
		t.Errorf("rule %+v", h)
	}
	if got := h.String(); got != `POST /api/orders host shop\.example header X-Token: s3cret header X-Trace` {
		t.Errorf("String %q", got)
	}
	if got := rules.HTTP[2].String(); got != "* *" {
		t.Errorf("String of {} %q", got)
	}
}

func TestHTTPRuleMatches(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	for _, tc := range []struct {
		name string
		rule HTTPRule
		req  HTTPRequest
		want bool
	}{
		{"method and path", HTTPRule{Method: "GET", Path: "/public/.*"}, HTTPRequest{Method: "GET", Path: "/public/a"}, true},
		{"the path must match whole", HTTPRule{Path: "/public"}, HTTPRequest{Method: "GET", Path: "/public/a"}, false},
		{"the path is anchored at the start", HTTPRule{Path: "/a"}, HTTPRequest{Method: "GET", Path: "/b/a"}, false},
		{"alternation stays inside the anchors", HTTPRule{Method: "GET|HEAD"}, HTTPRequest{Method: "GETX"}, false},
		{"alternation", HTTPRule{Method: "GET|HEAD"}, HTTPRequest{Method: "HEAD"}, true},
		{"method differs", HTTPRule{Method: "GET"}, HTTPRequest{Method: "POST", Path: "/"}, false},
		{"empty rule matches anything", HTTPRule{}, HTTPRequest{Method: "DELETE", Path: "/x"}, true},
		{"query is part of the path", HTTPRule{Path: "/a"}, HTTPRequest{Method: "GET", Path: "/a?x=1"}, false},
		{"host", HTTPRule{Host: `shop\.example(:80)?`}, HTTPRequest{Method: "GET", Path: "/", Host: "shop.example:80"}, true},
		{"host differs", HTTPRule{Host: `shop\.example`}, HTTPRequest{Method: "GET", Path: "/", Host: "evil.example"}, false},
		{"header present", HTTPRule{Headers: []HeaderMatch{{Name: "X-Trace"}}}, HTTPRequest{Header: hdr("x-trace", "1")}, true},
		{"header missing", HTTPRule{Headers: []HeaderMatch{{Name: "X-Trace"}}}, HTTPRequest{Header: hdr("X-Other", "1")}, false},
		{"header value", HTTPRule{Headers: []HeaderMatch{{Name: "X-Token", Value: "s", HasValue: true}}}, HTTPRequest{Header: hdr("X-Token", "t", "X-Token", "s")}, true},
		{"header value differs", HTTPRule{Headers: []HeaderMatch{{Name: "X-Token", Value: "s", HasValue: true}}}, HTTPRequest{Header: hdr("X-Token", "t")}, false},
		{"bad hand-built expression matches nothing", HTTPRule{Path: "("}, HTTPRequest{Path: "("}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rule.Matches(tc.req); got != tc.want {
				t.Errorf("Matches(%v) = %v, want %v", tc.req, got, tc.want)
			}
		})
	}
}

func TestL7EndpointPolicy(t *testing.T) {
	top := mustBuiltin(t, "l7")
	ep, err := top.EndpointPolicy("pod4")
	if err != nil {
		t.Fatal(err)
	}
	fe, cl := top.Pod("pod1").Identity, top.Pod("pod2").Identity
	want := map[PolicyKey]uint16{
		{Ingress, fe, 8080, TCP}: 8080,
		{Ingress, cl, 8080, TCP}: 8080, // an L4 rule on an L7 port is proxied too
		{Ingress, fe, 9090, TCP}: 0,
	}
	if len(ep.Entries) != len(want) {
		t.Fatalf("entries %+v", ep.Entries)
	}
	for _, e := range ep.Entries {
		if p, ok := want[e.PolicyKey]; !ok || p != e.ProxyPort {
			t.Errorf("entry %v proxy port %d, want %d (present %v)", e.PolicyKey, e.ProxyPort, p, ok)
		}
	}
	if len(ep.L7Ports) != 1 || ep.L7(Ingress, 8080) == nil || ep.L7(Ingress, 9090) != nil || ep.L7(Egress, 8080) != nil {
		t.Fatalf("L7 ports %+v", ep.L7Ports)
	}
	if d := ep.Lookup(Ingress, fe, 8080, TCP); !d.Allowed || d.ProxyPort != 8080 {
		t.Errorf("lookup 8080: %+v", d)
	}
	if d := ep.Lookup(Ingress, fe, 9090, TCP); !d.Allowed || d.ProxyPort != 0 {
		t.Errorf("lookup 9090: %+v", d)
	}
	client, err := top.EndpointPolicy("pod2")
	if err != nil {
		t.Fatal(err)
	}
	if p := client.L7(Egress, 80); p == nil || len(p.Allows) != 1 || p.Allows[0].Peers[0] != top.Pod("pod5").Identity {
		t.Errorf("pod2 egress L7 %+v", client.L7Ports)
	}
}

func TestL7Decide(t *testing.T) {
	top := mustBuiltin(t, "l7")
	ep, err := top.EndpointPolicy("pod4")
	if err != nil {
		t.Fatal(err)
	}
	port := ep.L7(Ingress, 8080)
	fe, cl, in := top.Pod("pod1").Identity, top.Pod("pod2").Identity, top.Pod("pod3").Identity
	for _, tc := range []struct {
		name   string
		remote Identity
		req    HTTPRequest
		ok     bool
		rule   string
	}{
		{"frontend GET /public/a", fe, HTTPRequest{Method: "GET", Path: "/public/a"}, true,
			`policy "backend-l7" ingress[0] toPorts[0] http[0]: GET /public/.*`},
		{"frontend GET /api/health, the second rule", fe, HTTPRequest{Method: "GET", Path: "/api/health"}, true,
			`policy "backend-l7" ingress[0] toPorts[0] http[1]: GET /api/health`},
		{"frontend POST /public/a", fe, HTTPRequest{Method: "POST", Path: "/public/a"}, false,
			`port 8080/TCP: no HTTP rule of policy "backend-l7" ingress[0] toPorts[0] matches`},
		{"frontend GET /private", fe, HTTPRequest{Method: "GET", Path: "/private"}, false,
			`port 8080/TCP: no HTTP rule of policy "backend-l7" ingress[0] toPorts[0] matches`},
		{"client: an L4 rule allows any request", cl, HTTPRequest{Method: "DELETE", Path: "/private"}, true,
			`policy "backend-l7" ingress[1] toPorts[0]: no HTTP rules, any request`},
		{"intruder: no rule selects it", in, HTTPRequest{Method: "GET", Path: "/public/a"}, false,
			`port 8080/TCP: no rule selects identity ` + itoa(uint32(in))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := port.Decide(tc.remote, tc.req)
			if d.Allowed != tc.ok || d.Rule != tc.rule || (d.Match != nil) != tc.ok {
				t.Errorf("Decide = %+v\nwant allowed %v rule %s", d, tc.ok, tc.rule)
			}
		})
	}
}

func itoa(v uint32) string {
	var b []byte
	for v >= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(append([]byte{byte('0' + v)}, b...))
}

func TestTraceL7(t *testing.T) {
	top := mustBuiltin(t, "l7")
	get := func(path string) *HTTPRequest { return &HTTPRequest{Method: "GET", Path: path} }
	for _, tc := range []struct {
		name      string
		src, dst  string
		dport     uint16
		req       *HTTPRequest
		verdict   string
		dropPoint string
		status    int
		l7Node    string // the node whose proxy decides; "" none
		ingressID Identity
	}{
		{"allowed at node2's ingress proxy", "pod1", "pod4", 8080, get("/public/a"), VerdictAllowed, "", 0, "node2", top.Pod("pod1").Identity},
		{"denied at node2's ingress proxy", "pod1", "pod4", 8080, get("/private"), VerdictDenied, "proxy", 403, "node2", top.Pod("pod1").Identity},
		{"through the service", "pod1", "10.224.1.1", 80, get("/private"), VerdictDenied, "proxy", 403, "node2", top.Pod("pod1").Identity},
		{"no request: L4 verdict, the proxy decides later", "pod1", "pod4", 8080, nil, VerdictAllowed, "", 0, "node2", top.Pod("pod1").Identity},
		{"intruder dropped at L4", "pod3", "pod4", 8080, get("/public/a"), VerdictDenied, "to-container", 0, "", top.Pod("pod3").Identity},
		{"plain L4 port: the request is not looked at", "pod1", "pod4", 9090, get("/private"), VerdictAllowed, "", 0, "", top.Pod("pod1").Identity},
		{"egress proxy allows; pod5 sees node1", "pod2", "pod5", 80, get("/ok"), VerdictAllowed, "", 0, "node1", IdentityRemoteNode},
		{"egress proxy denies", "pod2", "pod5", 80, get("/nope"), VerdictDenied, "proxy", 403, "node1", IdentityRemoteNode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := TraceRequest(top, tc.src, tc.dst, tc.dport, TCP, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			p := r.Paths[0]
			l7 := p.Ingress.L7
			if p.Egress.L7 != nil {
				l7 = p.Egress.L7
			}
			node := ""
			if l7 != nil {
				node = l7.Node
			}
			if r.Verdict != tc.verdict || p.DropPoint != tc.dropPoint || p.HTTPStatus != tc.status || node != tc.l7Node ||
				p.Ingress.RemoteIdentity != tc.ingressID {
				t.Errorf("verdict %s drop %q status %d proxy %q ingress identity %d; want %s %q %d %q %d\n%s",
					r.Verdict, p.DropPoint, p.HTTPStatus, node, p.Ingress.RemoteIdentity,
					tc.verdict, tc.dropPoint, tc.status, tc.l7Node, tc.ingressID, r)
			}
			if l7 != nil && (l7.Decision == nil) != (tc.req == nil) {
				t.Errorf("decision %+v for request %v", l7.Decision, tc.req)
			}
		})
	}
}

func TestTraceL7Text(t *testing.T) {
	top := mustBuiltin(t, "l7")
	r, err := TraceRequest(top, "pod2", "pod5", 80, TCP, &HTTPRequest{Method: "GET", Path: "/nope", Header: http.Header{"X-B": {"2"}, "X-A": {"1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    Request: GET /nope header X-A: 1 header X-B: 2\n",
		"     redirected to the L7 proxy on node1, port 80; its rules on 80/TCP:\n",
		`       policy "client-egress-l7" egress[0] toPorts[0] http[0] (line 54): GET /ok, identities 9231` + "\n",
		`     request denied: port 80/TCP: no HTTP rule of policy "client-egress-l7" egress[0] toPorts[0] matches: the proxy answers 403 Access denied` + "\n",
		"   Ingress: not reached (dropped at egress); had it been:\n",
		"   Ingress (from node1's proxy) at pod5",
		"   Verdict: DENIED at proxy (Policy denied, HTTP 403 Access denied)\n",
	} {
		if !strings.Contains(r.String(), want) {
			t.Errorf("trace lacks %q:\n%s", want, r)
		}
	}
	r, err = TraceRequest(top, "pod1", "pod4", 8080, TCP, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "the proxy decides each request (trace one with --http-method and --http-path)"; !strings.Contains(r.String(), want) {
		t.Errorf("trace lacks %q:\n%s", want, r)
	}
}

// A proxy that answers a client on its own node through a service VIP is
// noted: nothing reverse-NATs its answers.
func TestTraceL7ServiceNote(t *testing.T) {
	top := mustBuiltin(t, "l7")
	r, err := TraceRequest(top, "pod1", "10.224.1.1", 80, TCP, &HTTPRequest{Method: "GET", Path: "/public/a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Notes) != 0 {
		t.Errorf("node2's proxy answers pod1 across the fabric: notes %q", r.Notes)
	}
	text := strings.Replace(topologyText(t), "{name: pod4, node: node2, ip: 10.1.2.40", "{name: pod4, node: node1, ip: 10.1.1.40", 1)
	local, err := Parse("l7.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	r, err = TraceRequest(local, "pod1", "10.224.1.1", 80, TCP, &HTTPRequest{Method: "GET", Path: "/public/a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "node1's proxy answers pod1 from the backend's address") {
		t.Errorf("notes %q", r.Notes)
	}
	local.SocketLB = true
	if r, _ = TraceRequest(local, "pod1", "10.224.1.1", 80, TCP, nil); len(r.Notes) != 0 {
		t.Errorf("with socketLB: notes %q", r.Notes)
	}
}

func topologyText(t *testing.T) string {
	t.Helper()
	b, err := builtin.ReadFile("l7.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
