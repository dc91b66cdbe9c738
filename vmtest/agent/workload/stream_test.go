package workload

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestHTTPStreamKeepsOneConnection: a stream's requests all travel on one
// connection (every answer names the same client port), and it fails,
// naming the request, when the server goes away mid-stream.
func TestHTTPStreamKeepsOneConnection(t *testing.T) {
	client, server := twoPods(t)
	l, err := Listen(server, "pod4", "tcp", 8080)
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort("10.1.1.40:8080")
	o := HTTPStream(context.Background(), client, dst, 300*time.Millisecond, time.Second)
	if !o.OK || o.Requests < 3 {
		t.Fatalf("stream: %+v", o)
	}
	if want := "from " + o.Local + "\n"; !strings.HasPrefix(o.Reply, "hoplab pod4 10.1.1.40:8080 ") || !strings.HasSuffix(o.Reply, want) {
		t.Errorf("last answer %q; want pod4's, ending in %q", o.Reply, want)
	}
	if o.MaxWait <= 0 || o.MaxWait > time.Second {
		t.Errorf("max wait %v", o.MaxWait)
	}
	t.Logf("%d requests on %s, longest wait %v", o.Requests, o.Local, o.MaxWait)

	done := make(chan Outcome)
	go func() { done <- HTTPStream(context.Background(), client, dst, 5*time.Second, time.Second) }()
	time.Sleep(200 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	o = <-done
	if o.OK || !strings.HasPrefix(o.Error, "request ") || o.Requests == 0 {
		t.Errorf("stream across the server's close: %+v", o)
	}
	t.Logf("after the close: %s", o.Error)
}
