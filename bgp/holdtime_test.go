package bgp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// relay forwards one TCP connection from its listener to target, dialling
// from source so the far speaker sees the near speaker's address. freeze
// stops the bytes without closing anything: to both speakers the session is
// silent, as when a node hangs or its link is cut.
type relay struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	frozen chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newRelay(t *testing.T, listen netip.Addr, source, target netip.AddrPort) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(listen, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, frozen: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(r.close)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: source.Addr().AsSlice()}, Timeout: 2 * time.Second}
			out, err := d.Dial("tcp", target.String())
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			go r.pipe(in, out)
			go r.pipe(out, in)
		}
	}()
	return r
}

func (r *relay) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *relay) pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		select {
		case <-r.frozen:
			<-r.done // hold the bytes; the connection stays open until close
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

func (r *relay) freeze() { r.once.Do(func() { close(r.frozen) }) }

func (r *relay) close() {
	r.ln.Close()
	close(r.done)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

// TestSilentPeerExpiresHoldTimer: when the session goes silent (no Cease
// notification, no TCP close), the hold timer takes the peer down and its
// routes are removed within the hold time.
func TestSilentPeerExpiresHoldTimer(t *testing.T) {
	addrA, addrB, addrRelay := mustAddr("127.0.0.31"), mustAddr("127.0.0.32"), mustAddr("127.0.0.33")
	portB := freePort(t, addrB)
	rl := newRelay(t, addrRelay, netip.AddrPortFrom(addrA, 0), netip.AddrPortFrom(addrB, uint16(portB)))
	timers := Peer{ConnectRetry: testRetry, HoldTime: testHold, Keepalive: testKeepalive}
	// a reaches b only through the relay; b waits for a.
	pa, pb := timers, timers
	pa.Address, pa.ASN, pa.Port, pa.LocalAddress = addrRelay, 65002, rl.port(), addrA
	pb.Address, pb.ASN, pb.Passive = addrA, 65001, true
	pod := mustPrefix("10.1.1.0/24")
	ib := &MemoryInstaller{}
	a, err := New(Config{ASN: 65001, RouterID: addrA, ListenPort: -1, Logger: testLogger(t, "a"),
		Peers: []Peer{pa}, Announcements: []Announcement{{Prefix: pod}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{ASN: 65002, RouterID: addrB, ListenPort: portB, ListenAddrs: []netip.Addr{addrB},
		Logger: testLogger(t, "b"), Peers: []Peer{pb}, RouteInstaller: ib})
	if err != nil {
		t.Fatal(err)
	}
	start(t, b)
	start(t, a)
	waitRoute(t, ib, pod, addrA, 15*time.Second)

	frozen := time.Now()
	rl.freeze()
	waitRoute(t, ib, pod, netip.Addr{}, testHold+3*time.Second)
	t.Logf("silent peer: route removed %v after the session froze (hold time %v)", time.Since(frozen), testHold)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	peers, err := b.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := findPeer(peers, addrA); p.State == StateEstablished {
		t.Errorf("peer still Established after hold-timer expiry: %v", p)
	}
}
