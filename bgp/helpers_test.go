package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// Short timers for loopback sessions.
const (
	testRetry     = time.Second
	testHold      = 3 * time.Second
	testKeepalive = time.Second
)

// testLogger sends the speaker's logs (GoBGP's included, warnings and up) to
// the test log.
func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("speaker", name)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// freePort returns a TCP port that was free on addr a moment ago.
func freePort(t *testing.T, addr netip.Addr) int {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("find free port on %v: %v", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start starts s and stops it when the test ends.
func start(t *testing.T, s *Speaker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Cleanup(s.Stop)
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
}

func waitEstablished(t *testing.T, s *Speaker, peer netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.WaitEstablished(ctx, peer); err != nil {
		t.Fatal(err)
	}
}

// waitRoute waits until m holds prefix via nexthop (or, with a zero nexthop,
// does not hold prefix at all).
func waitRoute(t *testing.T, m *MemoryInstaller, prefix netip.Prefix, nexthop netip.Addr, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	err := m.Wait(ctx, func(r map[netip.Prefix]netip.Addr) bool {
		nh, ok := r[prefix]
		if !nexthop.IsValid() {
			return !ok
		}
		return ok && nh == nexthop
	})
	if err != nil {
		if nexthop.IsValid() {
			t.Fatalf("%v via %v not installed within %v (have %v): %v", prefix, nexthop, within, m.Routes(), err)
		}
		t.Fatalf("%v not removed within %v (have %v): %v", prefix, within, m.Routes(), err)
	}
}

func findRoute(l RouteList, prefix netip.Prefix) (Route, bool) {
	for _, r := range l {
		if r.Prefix == prefix && r.Best {
			return r, true
		}
	}
	return Route{}, false
}

func findPeer(l PeerList, addr netip.Addr) (PeerStatus, bool) {
	for _, p := range l {
		if p.Address == addr {
			return p, true
		}
	}
	return PeerStatus{}, false
}

var (
	mustAddr   = netip.MustParseAddr
	mustPrefix = netip.MustParsePrefix
)
