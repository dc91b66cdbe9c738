package flowline

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestL7LinesGolden renders the records of the l7 topology's cases: an
// allowed GET, a denied one, an egress request and a request the proxy
// could not forward.
func TestL7LinesGolden(t *testing.T) {
	top, err := topologies.Builtin("l7")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 23, 10, 31, 15, 123e6, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	flow := func(node, dir, ep, src, dst, path string) nodeapi.L7Event {
		s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
		sp, dp := top.PodByIP(s.Addr()), top.PodByIP(d.Addr())
		return nodeapi.L7Event{Node: node, Direction: dir, Endpoint: ep, ProxyPort: d.Port(), Src: s, Dst: d,
			SrcIdentity: uint32(sp.Identity), DstIdentity: uint32(dp.Identity), Protocol: "HTTP/1.1",
			Method: "GET", Host: dst, Path: path, URL: "http://" + dst + path}
	}
	with := func(e nodeapi.L7Event, ms int, typ, verdict, reason string, status int, latency time.Duration) nodeapi.L7Event {
		e.Time, e.Type, e.Verdict, e.Reason, e.Status, e.Latency = at(ms), typ, verdict, reason, status, latency
		return e
	}
	allowed := flow("node2", "ingress", "pod4", "10.1.1.10:40000", "10.1.2.40:8080", "/public/a")
	denied := flow("node2", "ingress", "pod4", "10.1.1.10:40002", "10.1.2.40:8080", "/private")
	egress := flow("node1", "egress", "pod2", "10.1.1.20:40004", "10.1.2.50:80", "/nope")
	failed := flow("node2", "ingress", "pod4", "10.1.1.20:40006", "10.1.2.40:8080", "/x")
	events := []nodeapi.L7Event{
		with(allowed, 0, nodeapi.L7Request, nodeapi.L7Forwarded, "", 0, 0),
		with(allowed, 3, nodeapi.L7Response, nodeapi.L7Forwarded, "", 200, 3400*time.Microsecond),
		with(denied, 7, nodeapi.L7Request, nodeapi.L7Dropped, "Policy denied", 0, 0),
		with(denied, 7, nodeapi.L7Response, nodeapi.L7Dropped, "Policy denied", 403, 80*time.Microsecond),
		with(egress, 9, nodeapi.L7Request, nodeapi.L7Dropped, "Policy denied", 0, 0),
		with(egress, 9, nodeapi.L7Response, nodeapi.L7Dropped, "Policy denied", 403, 0),
		with(failed, 12, nodeapi.L7Request, nodeapi.L7Forwarded, "", 0, 0),
		with(failed, 15, nodeapi.L7Response, nodeapi.L7Error, "upstream: dial tcp4 10.1.2.40:8080: connection refused", 502, 2*time.Millisecond),
	}
	var b strings.Builder
	for _, e := range events {
		b.WriteString(FormatL7(e, top) + "\n")
	}
	path := filepath.Join("testdata", "l7.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("l7 lines differ from %s (-update to accept):\n%s", path, b.String())
	}
	for i, v := range []string{Forwarded, Forwarded, Dropped, Dropped, Dropped, Dropped, Forwarded, Error} {
		if got := L7Verdict(events[i]); got != v {
			t.Errorf("event %d verdict %s, want %s", i, got, v)
		}
	}
}
