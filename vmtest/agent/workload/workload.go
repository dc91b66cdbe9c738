package workload

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// NetNS runs a function inside a network namespace; *pods.Pod satisfies it.
type NetNS interface {
	Do(fn func() error) error
}

// Listener is a running server in a pod.
type Listener struct {
	// Proto is "tcp" or "udp".
	Proto string
	// Port is the port it listens on.
	Port   uint16
	closer io.Closer
	done   chan struct{}
}

// Close stops the listener and waits for its goroutine.
func (l *Listener) Close() error {
	err := l.closer.Close()
	<-l.done
	return err
}

// ParseListen parses a topology listen entry such as "tcp/8080".
func ParseListen(s string) (proto string, port uint16, err error) {
	proto, p, ok := strings.Cut(s, "/")
	if !ok || (proto != "tcp" && proto != "udp") {
		return "", 0, fmt.Errorf("listen %q: want tcp/PORT or udp/PORT", s)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("listen %q: bad port", s)
	}
	return proto, uint16(n), nil
}

// Answer is the body a pod's servers send back: "hoplab <pod> <ip>:<port> from <client>".
func Answer(pod string, local, remote net.Addr) string {
	return fmt.Sprintf("hoplab %s %s from %s\n", pod, local, remote)
}

// Listen starts a server for proto/port on all of the pod's addresses:
// HTTP for tcp, an echo that prefixes Answer for udp.
func Listen(ns NetNS, pod, proto string, port uint16) (*Listener, error) {
	l := &Listener{Proto: proto, Port: port, done: make(chan struct{})}
	addr := ":" + strconv.Itoa(int(port))
	switch proto {
	case "tcp":
		var ln net.Listener
		if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
			return nil, fmt.Errorf("pod %s: tcp/%d: %w", pod, port, err)
		}
		srv := &http.Server{
			ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
				remote, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
				_, _ = io.WriteString(w, Answer(pod, local, remote))
			}),
		}
		l.closer = srv
		go func() { defer close(l.done); _ = srv.Serve(ln) }()
	case "udp":
		var pc net.PacketConn
		if err := ns.Do(func() (err error) { pc, err = net.ListenPacket("udp4", addr); return err }); err != nil {
			return nil, fmt.Errorf("pod %s: udp/%d: %w", pod, port, err)
		}
		l.closer = pc
		// The datagram's own destination (IP_PKTINFO) is the local address
		// the answer names, as the HTTP server does for TCP.
		p4 := ipv4.NewPacketConn(pc)
		if err := p4.SetControlMessage(ipv4.FlagDst, true); err != nil {
			pc.Close()
			return nil, fmt.Errorf("pod %s: udp/%d: %w", pod, port, err)
		}
		go func() {
			defer close(l.done)
			buf := make([]byte, 65536)
			for {
				n, cm, from, err := p4.ReadFrom(buf)
				if err != nil {
					return
				}
				local := pc.LocalAddr()
				if cm != nil && cm.Dst != nil {
					local = &net.UDPAddr{IP: cm.Dst, Port: int(port)}
				}
				reply := Answer(pod, local, from) + string(buf[:n])
				_, _ = pc.WriteTo([]byte(reply), from)
			}
		}()
	default:
		return nil, fmt.Errorf("pod %s: listen: unknown protocol %q", pod, proto)
	}
	return l, nil
}

// Outcome is the result of one client action, as the agent reports it.
type Outcome struct {
	// OK is true when the action got its answer.
	OK bool `json:"ok"`
	// Reply is what the server sent back (HTTP body, UDP payload).
	Reply string `json:"reply,omitempty"`
	// Error explains a failure ("i/o timeout", "connection refused").
	Error string `json:"error,omitempty"`
	// Local is the client's address and port.
	Local string `json:"local,omitempty"`
	// Cookie is the client socket's cookie (SO_COOKIE), which names it in
	// the socket LB's records; 0 when no socket was connected.
	Cookie uint64 `json:"cookie,omitempty"`
	// RTT is how long the action took.
	RTT time.Duration `json:"rtt"`
	// Requests counts the answered requests of a stream (HTTPStream).
	Requests int `json:"requests,omitempty"`
	// MaxWait is a stream's longest wait for an answer.
	MaxWait time.Duration `json:"max_wait,omitempty"`
}

// boundNS is a NetNS whose client sockets bind a source port.
type boundNS struct {
	NetNS
	port uint16
}

// WithSourcePort returns ns whose client actions bind source port port (0:
// any), so that a test knows the flow before the first packet.
func WithSourcePort(ns NetNS, port uint16) NetNS {
	if port == 0 {
		return ns
	}
	return boundNS{ns, port}
}

// dial connects from inside the pod's network namespace; the socket keeps
// the namespace it was created in.
func dial(ctx context.Context, ns NetNS, network string, dst netip.AddrPort) (c net.Conn, err error) {
	var d net.Dialer
	if b, ok := ns.(boundNS); ok {
		if network == "udp4" {
			d.LocalAddr = &net.UDPAddr{Port: int(b.port)}
		} else {
			d.LocalAddr = &net.TCPAddr{Port: int(b.port)}
		}
	}
	err = ns.Do(func() (err error) {
		c, err = d.DialContext(ctx, network, dst.String())
		return err
	})
	return c, err
}

func fail(start time.Time, err error) Outcome {
	return Outcome{Error: err.Error(), RTT: time.Since(start)}
}

// TCPConnect opens a TCP connection from the pod to dst and closes it.
func TCPConnect(ctx context.Context, ns NetNS, dst netip.AddrPort) Outcome {
	start := time.Now()
	c, err := dial(ctx, ns, "tcp4", dst)
	if err != nil {
		return fail(start, err)
	}
	defer c.Close()
	return Outcome{OK: true, Local: c.LocalAddr().String(), Cookie: cookieOf(c), RTT: time.Since(start)}
}

// cookieOf returns c's socket cookie, 0 if the kernel gives none.
func cookieOf(c net.Conn) uint64 {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var cookie uint64
	_ = rc.Control(func(fd uintptr) {
		cookie, _ = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	})
	return cookie
}

// HTTPGet fetches http://dst/ from the pod over a fresh connection.
func HTTPGet(ctx context.Context, ns NetNS, dst netip.AddrPort) Outcome {
	return HTTPGetPath(ctx, ns, dst, "/")
}

// HTTPGetPath fetches http://dst + path from the pod over a fresh
// connection. An answer other than 200 fails the outcome: Error is its
// status ("403 Forbidden") and Reply its body.
func HTTPGetPath(ctx context.Context, ns NetNS, dst netip.AddrPort, path string) Outcome {
	start := time.Now()
	c, err := dial(ctx, ns, "tcp4", dst)
	if err != nil {
		return fail(start, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	local, cookie := c.LocalAddr().String(), cookieOf(c)
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return c, nil }}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+dst.String()+path, nil)
	if err != nil {
		return fail(start, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fail(start, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fail(start, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Outcome{Error: resp.Status, Reply: string(body), Local: local, Cookie: cookie, RTT: time.Since(start)}
	}
	return Outcome{OK: true, Reply: string(body), Local: local, Cookie: cookie, RTT: time.Since(start)}
}

// UDPExchange sends payload from the pod to dst and waits for one reply.
func UDPExchange(ctx context.Context, ns NetNS, dst netip.AddrPort, payload []byte) Outcome {
	start := time.Now()
	c, err := dial(ctx, ns, "udp4", dst)
	if err != nil {
		return fail(start, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write(payload); err != nil {
		return fail(start, err)
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return fail(start, err)
	}
	return Outcome{OK: true, Reply: string(buf[:n]), Local: c.LocalAddr().String(), Cookie: cookieOf(c), RTT: time.Since(start)}
}

var echoID struct {
	sync.Mutex
	next uint16
}

// Ping sends one ICMP echo request from the pod to dst (raw socket, needs
// CAP_NET_RAW) and waits for the matching reply.
func Ping(ctx context.Context, ns NetNS, dst netip.Addr) Outcome {
	start := time.Now()
	var c *icmp.PacketConn
	if err := ns.Do(func() (err error) { c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0"); return err }); err != nil {
		return fail(start, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	echoID.Lock()
	echoID.next++
	id := int(echoID.next)
	echoID.Unlock()
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("hoplab")}}
	wire, err := msg.Marshal(nil)
	if err != nil {
		return fail(start, err)
	}
	if _, err := c.WriteTo(wire, &net.IPAddr{IP: net.IP(dst.AsSlice())}); err != nil {
		return fail(start, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fail(start, err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil {
			continue
		}
		if echo, ok := m.Body.(*icmp.Echo); ok && m.Type == ipv4.ICMPTypeEchoReply && echo.ID == id {
			return Outcome{OK: true, Reply: from.String(), RTT: time.Since(start)}
		}
	}
}
