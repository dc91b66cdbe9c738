package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// backend is a real HTTP server on loopback standing in for a pod: it
// answers "backend METHOD TARGET ua=USER-AGENT" and counts connections.
type backend struct {
	addr  netip.AddrPort
	conns atomic.Int32
	reqs  atomic.Int32
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.reqs.Add(1)
			fmt.Fprintf(w, "backend %s %s ua=%s", r.Method, r.RequestURI, r.Header.Get("User-Agent"))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				b.conns.Add(1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

// transparentListener stands in for ListenTransparent on loopback: every
// accepted connection reports the flow as the kernel would after the
// policy routing, local = the original destination, remote = the pod.
type transparentListener struct {
	net.Listener
	mu            sync.Mutex
	local, remote netip.AddrPort
}

func (l *transparentListener) set(remote, local string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.local, l.remote = netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)
}

func (l *transparentListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return flowConn{c, net.TCPAddrFromAddrPort(l.local), net.TCPAddrFromAddrPort(l.remote)}, nil
}

type flowConn struct {
	net.Conn
	local, remote net.Addr
}

func (c flowConn) LocalAddr() net.Addr  { return c.local }
func (c flowConn) RemoteAddr() net.Addr { return c.remote }

// lab is a proxy of one node of the l7 topology on loopback.
type lab struct {
	t       *testing.T
	proxy   *Proxy
	ln      map[uint16]*transparentListener
	backend *backend
	mu      sync.Mutex
	records []nodeapi.L7Event
	dialed  []netip.AddrPort
}

func newLab(t *testing.T, node string) *lab {
	t.Helper()
	l := &lab{t: t, ln: map[uint16]*transparentListener{}, backend: newBackend(t)}
	l.proxy = New(Options{
		Node: node,
		Emit: func(e nodeapi.L7Event) { l.mu.Lock(); l.records = append(l.records, e); l.mu.Unlock() },
		Listen: func(port uint16) (net.Listener, error) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			tl := &transparentListener{Listener: ln}
			l.ln[port] = tl
			return tl, nil
		},
		Dial: func(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
			l.mu.Lock()
			l.dialed = append(l.dialed, dst)
			l.mu.Unlock()
			if dst.Port() == 1 { // nobody listens there
				return nil, fmt.Errorf("dial %v: connection refused", dst)
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp4", l.backend.addr.String())
		},
	})
	t.Cleanup(func() {
		if err := l.proxy.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	l.update(mustTopology(t, ""), node)
	return l
}

func mustTopology(t *testing.T, text string) *topologies.Topology {
	t.Helper()
	if text == "" {
		top, err := topologies.Builtin("l7")
		if err != nil {
			t.Fatal(err)
		}
		return top
	}
	top, err := topologies.Parse("l7.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func (l *lab) update(top *topologies.Topology, node string) []uint16 {
	l.t.Helper()
	pol, err := FromTopology(top, node)
	if err != nil {
		l.t.Fatal(err)
	}
	ports, err := l.proxy.Update(pol)
	if err != nil {
		l.t.Fatal(err)
	}
	return ports
}

// client is a connection to the proxy carrying the flow src → dst.
type client struct {
	c net.Conn
	r *bufio.Reader
}

func (l *lab) connect(src, dst string) *client {
	l.t.Helper()
	d := netip.MustParseAddrPort(dst)
	tl := l.ln[d.Port()]
	if tl == nil {
		l.t.Fatalf("no listener on port %d", d.Port())
	}
	tl.set(src, dst)
	c, err := net.Dial("tcp4", tl.Addr().String())
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	return &client{c: c, r: bufio.NewReader(c)}
}

// do sends raw request text and reads the answer.
func (c *client) do(t *testing.T, req string) (int, string) {
	t.Helper()
	_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: 10.1.2.40:8080\r\n\r\n"
}

// waitRecords returns the records once there are n.
func (l *lab) waitRecords(n int) []nodeapi.L7Event {
	l.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		l.mu.Lock()
		got := append([]nodeapi.L7Event(nil), l.records...)
		l.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				l.t.Fatalf("%d records, want %d: %+v", len(got), n, got)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *lab) reset() {
	l.mu.Lock()
	l.records, l.dialed = nil, nil
	l.mu.Unlock()
}

func TestProxyAllowsAndDeniesOnOneConnection(t *testing.T) {
	l := newLab(t, "node2")
	if got := l.proxy.Ports(); len(got) != 1 || got[0] != 8080 {
		t.Fatalf("ports %v, want [8080]", got)
	}
	c := l.connect("10.1.1.10:40000", "10.1.2.40:8080") // pod1 (frontend) → pod4
	t.Log("GET /public/a: allowed by http[0], answered by the backend")
	if status, body := c.do(t, get("/public/a")); status != 200 || body != "backend GET /public/a ua=" {
		t.Fatalf("%d %q", status, body)
	}
	t.Log("GET /private: no rule matches: 403 Access denied, the backend never sees it")
	if status, body := c.do(t, get("/private")); status != 403 || body != "Access denied\r\n" {
		t.Fatalf("%d %q", status, body)
	}
	t.Log("POST /public/a with a body: the method does not match: 403, the body is skipped")
	if status, _ := c.do(t, "POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"); status != 403 {
		t.Fatalf("POST: %d", status)
	}
	t.Log("GET /api/health: allowed by http[1], on the same upstream connection")
	if status, body := c.do(t, get("/api/health")); status != 200 || body != "backend GET /api/health ua=" {
		t.Fatalf("%d %q", status, body)
	}
	if n, r := l.backend.conns.Load(), l.backend.reqs.Load(); n != 1 || r != 2 {
		t.Errorf("backend saw %d connections, %d requests; want 1, 2", n, r)
	}
	if len(l.dialed) != 1 || l.dialed[0] != netip.MustParseAddrPort("10.1.2.40:8080") {
		t.Errorf("dialed %v, want the original destination once", l.dialed)
	}

	recs := l.waitRecords(8)
	want := []struct {
		typ, verdict, path string
		status             int
		rule               string
	}{
		{nodeapi.L7Request, nodeapi.L7Forwarded, "/public/a", 0, `policy "backend-l7" ingress[0] toPorts[0] http[0]: GET /public/.*`},
		{nodeapi.L7Response, nodeapi.L7Forwarded, "/public/a", 200, `policy "backend-l7" ingress[0] toPorts[0] http[0]: GET /public/.*`},
		{nodeapi.L7Request, nodeapi.L7Dropped, "/private", 0, `port 8080/TCP: no HTTP rule of policy "backend-l7" ingress[0] toPorts[0] matches`},
		{nodeapi.L7Response, nodeapi.L7Dropped, "/private", 403, `port 8080/TCP: no HTTP rule of policy "backend-l7" ingress[0] toPorts[0] matches`},
		{nodeapi.L7Request, nodeapi.L7Dropped, "/public/a", 0, `port 8080/TCP: no HTTP rule of policy "backend-l7" ingress[0] toPorts[0] matches`},
		{nodeapi.L7Response, nodeapi.L7Dropped, "/public/a", 403, `port 8080/TCP: no HTTP rule of policy "backend-l7" ingress[0] toPorts[0] matches`},
		{nodeapi.L7Request, nodeapi.L7Forwarded, "/api/health", 0, `policy "backend-l7" ingress[0] toPorts[0] http[1]: GET /api/health`},
		{nodeapi.L7Response, nodeapi.L7Forwarded, "/api/health", 200, `policy "backend-l7" ingress[0] toPorts[0] http[1]: GET /api/health`},
	}
	top := mustTopology(t, "")
	for i, w := range want {
		r := recs[i]
		if r.Type != w.typ || r.Verdict != w.verdict || r.Path != w.path || r.Status != w.status || r.Rule != w.rule {
			t.Errorf("record %d: %s %s %s %d %q\nwant %s %s %s %d %q", i, r.Type, r.Verdict, r.Path, r.Status, r.Rule, w.typ, w.verdict, w.path, w.status, w.rule)
		}
		if r.Node != "node2" || r.Direction != "ingress" || r.Endpoint != "pod4" || r.ProxyPort != 8080 ||
			r.Src.String() != "10.1.1.10:40000" || r.Dst.String() != "10.1.2.40:8080" ||
			r.SrcName != "pod1" || r.DstName != "pod4" || r.SrcIdentity != uint32(top.Pod("pod1").Identity) ||
			r.DstIdentity != uint32(top.Pod("pod4").Identity) || r.Protocol != "HTTP/1.1" || r.Time.IsZero() {
			t.Errorf("record %d: flow fields %+v", i, r)
		}
		if (r.Verdict == nodeapi.L7Dropped) != (r.Reason == "Policy denied") {
			t.Errorf("record %d: reason %q", i, r.Reason)
		}
		if r.Type == nodeapi.L7Response && r.Latency <= 0 {
			t.Errorf("record %d: latency %v", i, r.Latency)
		}
	}
	if recs[0].URL != "http://10.1.2.40:8080/public/a" || recs[4].Method != "POST" || recs[4].Host != "x" {
		t.Errorf("url %q, method %q host %q", recs[0].URL, recs[4].Method, recs[4].Host)
	}
	m := l.proxy.Metrics()
	wantM := []Counter{{"ingress", nodeapi.L7Dropped, 403, 2}, {"ingress", nodeapi.L7Forwarded, 200, 2}}
	if fmt.Sprint(m) != fmt.Sprint(wantM) {
		t.Errorf("metrics %v, want %v", m, wantM)
	}
	l.proxy.ResetMetrics()
	if m := l.proxy.Metrics(); len(m) != 0 {
		t.Errorf("metrics after reset %v", m)
	}
}

func TestProxyPeers(t *testing.T) {
	l := newLab(t, "node2")
	t.Log("pod2 (client) has an L4 rule on the L7 port: any request passes")
	c := l.connect("10.1.1.20:40001", "10.1.2.40:8080")
	if status, body := c.do(t, "DELETE /private HTTP/1.1\r\nHost: a\r\n\r\n"); status != 200 || body != "backend DELETE /private ua=" {
		t.Fatalf("%d %q", status, body)
	}
	t.Log("pod3 (intruder) is selected by no rule: had the datapath let it through, the proxy would deny")
	c = l.connect("10.1.1.30:40002", "10.1.2.40:8080")
	if status, _ := c.do(t, get("/public/a")); status != 403 {
		t.Fatalf("intruder: %d", status)
	}
	recs := l.waitRecords(4)
	if recs[0].Rule != `policy "backend-l7" ingress[1] toPorts[0]: no HTTP rules, any request` {
		t.Errorf("client rule %q", recs[0].Rule)
	}
	if want := "port 8080/TCP: no rule selects identity"; !strings.HasPrefix(recs[2].Rule, want) || recs[2].SrcName != "pod3" {
		t.Errorf("intruder record %+v", recs[2])
	}
}

func TestProxyEgress(t *testing.T) {
	l := newLab(t, "node1")
	if got := l.proxy.Ports(); len(got) != 1 || got[0] != 80 {
		t.Fatalf("ports %v, want [80]", got)
	}
	c := l.connect("10.1.1.20:40003", "10.1.2.50:80") // pod2 (client) → pod5 (web)
	if status, _ := c.do(t, "GET /ok HTTP/1.1\r\nHost: 10.1.2.50\r\nUser-Agent: curl/8\r\n\r\n"); status != 200 {
		t.Fatalf("/ok: %d", status)
	}
	if status, _ := c.do(t, "GET /nope HTTP/1.1\r\nHost: 10.1.2.50\r\n\r\n"); status != 403 {
		t.Fatalf("/nope: %d", status)
	}
	recs := l.waitRecords(4)
	for _, r := range recs {
		if r.Direction != "egress" || r.Endpoint != "pod2" || r.SrcName != "pod2" || r.DstName != "pod5" || r.Node != "node1" {
			t.Errorf("record %+v", r)
		}
	}
	if recs[0].Rule != `policy "client-egress-l7" egress[0] toPorts[0] http[0]: GET /ok` || recs[2].Verdict != nodeapi.L7Dropped {
		t.Errorf("records %+v", recs)
	}
	if m := l.proxy.Metrics(); len(m) != 2 || m[0].Direction != "egress" {
		t.Errorf("metrics %v", m)
	}
}

// l7Changed is the l7 topology with pod4's frontend rule allowing
// /private/.* instead of /public/.* and port 9090 made an L7 port too.
func l7Changed(t *testing.T) *topologies.Topology {
	top := mustTopology(t, "")
	text := strings.Replace(topologyText(t), `path: "/public/.*"`, `path: "/private.*"`, 1)
	text = strings.Replace(text, `toPorts: [{ports: [{port: "9090", protocol: TCP}]}]`,
		`toPorts: [{ports: [{port: "9090", protocol: TCP}], rules: {http: [{method: GET}]}}]`, 1)
	changed := mustTopology(t, text)
	if top.Name != changed.Name {
		t.Fatal("bad topology")
	}
	return changed
}

func topologyText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../topologies/l7.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProxyUpdateAppliesToOpenConnections(t *testing.T) {
	l := newLab(t, "node2")
	c := l.connect("10.1.1.10:40004", "10.1.2.40:8080")
	if status, _ := c.do(t, get("/private")); status != 403 {
		t.Fatalf("before: %d", status)
	}
	t.Log("update: /private allowed, /public no more, 9090 becomes an L7 port")
	if ports := l.update(l7Changed(t), "node2"); fmt.Sprint(ports) != "[8080 9090]" {
		t.Fatalf("ports %v", ports)
	}
	if fmt.Sprint(l.proxy.Ports()) != "[8080 9090]" {
		t.Fatalf("listening on %v", l.proxy.Ports())
	}
	if status, _ := c.do(t, get("/private")); status != 200 {
		t.Fatalf("after, same connection: %d", status)
	}
	if status, _ := c.do(t, get("/public/a")); status != 403 {
		t.Fatalf("after, /public/a: %d", status)
	}
	t.Log("back to the shipped rules: 9090's listener stays until Prune closes it; the open connection on 8080 stays")
	l.update(mustTopology(t, ""), "node2")
	if fmt.Sprint(l.proxy.Ports()) != "[8080 9090]" {
		t.Fatalf("listening on %v before Prune", l.proxy.Ports())
	}
	if closed := l.proxy.Prune(); fmt.Sprint(closed) != "[9090]" || fmt.Sprint(l.proxy.Ports()) != "[8080]" {
		t.Fatalf("Prune closed %v, listening on %v", closed, l.proxy.Ports())
	}
	if status, _ := c.do(t, get("/public/a")); status != 200 {
		t.Fatalf("restored: %d", status)
	}
}

func TestProxyErrors(t *testing.T) {
	l := newLab(t, "node2")
	t.Log("a request that is not HTTP: 400, the connection closes")
	c := l.connect("10.1.1.10:40005", "10.1.2.40:8080")
	if status, _ := c.do(t, "HELLO\r\n\r\n"); status != 400 {
		t.Fatalf("garbage: %d", status)
	}
	recs := l.waitRecords(1)
	if recs[0].Verdict != nodeapi.L7Error || recs[0].Status != 400 || !strings.HasPrefix(recs[0].Reason, "bad request") {
		t.Errorf("record %+v", recs[0])
	}
	l.reset()

	t.Log("the destination refuses: 502")
	top := mustTopology(t, strings.Replace(topologyText(t), `listen: ["tcp/8080", "tcp/9090"]}`, `listen: ["tcp/8080", "tcp/9090"]}
  - {name: pod9, node: node2, ip: 10.1.2.90, labels: {app: backend}}`, 1))
	pol, err := FromTopology(top, "node2")
	if err != nil {
		t.Fatal(err)
	}
	pol.Endpoints[netip.MustParseAddr("10.1.2.90")].Ingress[1] = pol.Endpoints[netip.MustParseAddr("10.1.2.90")].Ingress[8080]
	if _, err := l.proxy.Update(pol); err != nil {
		t.Fatal(err)
	}
	c = l.connect("10.1.1.10:40006", "10.1.2.90:1")
	if status, _ := c.do(t, get("/public/a")); status != 502 {
		t.Fatalf("refused: %d", status)
	}
	recs = l.waitRecords(2)
	if recs[0].Verdict != nodeapi.L7Forwarded || recs[1].Verdict != nodeapi.L7Error || recs[1].Status != 502 {
		t.Errorf("records %+v", recs)
	}
	l.reset()

	t.Log("a flow to the node's own address no policy explains: 502, never forwarded (it would loop)")
	c = l.connect("10.1.1.10:40007", "10.255.2.12:8080")
	if status, _ := c.do(t, get("/")); status != 502 {
		t.Fatalf("local: %d", status)
	}
	t.Log("a flow no policy explains any more (rules removed after the redirect): forwarded")
	c = l.connect("10.1.1.10:40008", "10.1.2.77:8080")
	if status, _ := c.do(t, get("/x")); status != 200 {
		t.Fatalf("unexplained: %d", status)
	}
	recs = l.waitRecords(3)
	if recs[0].Status != 502 || recs[1].Rule != ruleNoPolicy || recs[2].Status != 200 {
		t.Errorf("records %+v", recs)
	}
	if fmt.Sprint(l.dialed) != "[10.1.2.77:8080]" {
		t.Errorf("dialed %v", l.dialed)
	}
}

func TestProxyUpdateListenFailure(t *testing.T) {
	p := New(Options{Listen: func(port uint16) (net.Listener, error) { return nil, fmt.Errorf("port %d busy", port) }})
	defer p.Close()
	pol, err := FromTopology(mustTopology(t, ""), "node2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Update(pol); err == nil || err.Error() != "listen on 8080: port 8080 busy" {
		t.Fatalf("err %v", err)
	}
	if p.policy.Load() != nil || len(p.Ports()) != 0 {
		t.Error("a failed update changed the proxy")
	}
	_ = p.Close()
	if _, err := p.Update(pol); err == nil {
		t.Error("update after close")
	}
}

func TestPolicyPeer(t *testing.T) {
	pol, err := FromTopology(mustTopology(t, ""), "node2")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip   string
		want Peer
	}{
		{"10.1.1.10", Peer{"pod1", mustTopology(t, "").Pod("pod1").Identity}},
		{"10.255.2.12", Peer{"node2", topologies.IdentityHost}},
		{"10.255.1.11", Peer{"node1", topologies.IdentityRemoteNode}},
		{"192.0.2.1", Peer{"", topologies.IdentityWorld}},
	} {
		if got := pol.Peer(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Peer(%s) = %+v, want %+v", tc.ip, got, tc.want)
		}
	}
	if len(pol.Endpoints) != 1 || !pol.Local[netip.MustParseAddr("10.1.2.1")] {
		t.Errorf("policy %+v", pol)
	}
}

func TestPolicyRules(t *testing.T) {
	pol, err := FromTopology(mustTopology(t, ""), "node2")
	if err != nil {
		t.Fatal(err)
	}
	want := `pod4 ingress 8080/TCP: policy "backend-l7" ingress[0] toPorts[0] from/to 38586: GET /public/.* | GET /api/health; ` +
		`policy "backend-l7" ingress[1] toPorts[0] from/to 27866: any request`
	if got := pol.Rules(); len(got) != 1 || got[0] != want {
		t.Errorf("Rules() = %q\nwant %q", got, want)
	}
	changed, err := FromTopology(l7Changed(t), "node2")
	if err != nil {
		t.Fatal(err)
	}
	if got := changed.Rules(); len(got) != 2 || got[0] == want {
		t.Errorf("changed rules %q", got)
	}
	if (*Policy)(nil).Rules() != nil {
		t.Error("nil policy has rules")
	}
}

// Close returns while a request waits on a destination that never
// answers: the upstream connection is closed with the client's.
func TestProxyCloseWithHangingUpstream(t *testing.T) {
	silent, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepts, never answers
		}
	}()
	forwarded := make(chan struct{}, 1)
	var tl *transparentListener
	p := New(Options{
		Emit: func(e nodeapi.L7Event) {
			if e.Type == nodeapi.L7Request {
				forwarded <- struct{}{}
			}
		},
		Listen: func(uint16) (net.Listener, error) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			tl = &transparentListener{Listener: ln}
			return tl, err
		},
		Dial: func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp4", silent.Addr().String())
		},
	})
	pol, err := FromTopology(mustTopology(t, ""), "node2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Update(pol); err != nil {
		t.Fatal(err)
	}
	tl.set("10.1.1.10:40009", "10.1.2.40:8080")
	c, err := net.Dial("tcp4", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, get("/public/a")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-forwarded:
	case <-time.After(3 * time.Second):
		t.Fatal("the request was not forwarded")
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs on the silent upstream")
	}
}
