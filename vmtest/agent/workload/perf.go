package workload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Perf kinds: the two measurements of the eBPF-versus-iptables study.
const (
	// PerfBulk is iperf3's default test: one TCP connection sending as
	// fast as it can for a fixed time; the receiver counts the bytes.
	PerfBulk = "bulk"
	// PerfRR is netperf's TCP_RR: one TCP connection, one request of
	// RequestSize bytes answered by ResponseSize bytes at a time, for a
	// fixed time; transactions per second and mean latency.
	PerfRR = "rr"
)

// Defaults of the perf measurements: netperf's TCP_RR sizes of the study
// (100-byte request, 200-byte response) and iperf3's write size.
const (
	DefaultRequestSize  = 100
	DefaultResponseSize = 200
	BulkWriteSize       = 128 << 10
	// MaxRRSize bounds a request or response of a TCP_RR test.
	MaxRRSize = 1 << 20
	// BulkSocketBuffer is the bulk sender's send buffer and the server's
	// receive buffer (iperf3's -w): fixed, so that the kernel's buffer
	// autotuning, whose outcome depends on the first round trips' timing,
	// does not make one connection several times faster than the next.
	BulkSocketBuffer = 4 << 20
)

// setBuffer sets a socket buffer option (SO_SNDBUF or SO_RCVBUF) to
// size, beyond the sysctl limits when the process may (CAP_NET_ADMIN).
func setBuffer(fd uintptr, opt, force, size int) error {
	if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, force, size); err == nil {
		return nil
	}
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size)
}

// bufferControl is a net.Dialer or net.ListenConfig Control function
// setting opt (with force) to BulkSocketBuffer.
func bufferControl(opt, force int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = setBuffer(fd, opt, force, BulkSocketBuffer) }); cerr != nil {
			return cerr
		}
		return err
	}
}

// perfMagic opens every perf connection's header.
var perfMagic = [4]byte{'H', 'L', 'P', '1'}

// perfHeaderLen is the header's size: magic, kind byte, 3 bytes of
// padding, request size and response size (big endian uint32s).
const perfHeaderLen = 16

// bulkSummaryLen is the bulk receiver's answer: bytes and nanoseconds
// (big endian uint64s).
const bulkSummaryLen = 16

// PerfResult is one measurement.
type PerfResult struct {
	// Kind is PerfBulk or PerfRR.
	Kind string `json:"kind"`
	// Duration is the measured time: the receiver's, from the first byte
	// to the end of the stream (bulk), or the client's, from the first
	// request to the last response (rr).
	Duration time.Duration `json:"duration"`
	// Bytes is what the receiver got (bulk).
	Bytes uint64 `json:"bytes,omitempty"`
	// BitsPerSecond is Bytes over Duration (bulk), iperf3's receiver figure.
	BitsPerSecond float64 `json:"bits_per_second,omitempty"`
	// Transactions counts the completed request/response pairs (rr).
	Transactions uint64 `json:"transactions,omitempty"`
	// TransactionsPerSecond is Transactions over Duration (rr).
	TransactionsPerSecond float64 `json:"transactions_per_second,omitempty"`
	// MeanLatency is the mean time from sending a request to having its
	// whole response (rr); with one transaction in flight it is netperf's
	// mean latency, 1/TransactionsPerSecond.
	MeanLatency time.Duration `json:"mean_latency,omitempty"`
	// Local is the client's address.
	Local string `json:"local,omitempty"`
}

// PerfServer answers the perf clients ([Bulk], [RR]) on one TCP port of a
// pod: netperf's and iperf3's server roles in one listener.
type PerfServer struct {
	// Port is the port it listens on.
	Port uint16
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	// conns are the open connections, closed by Close.
	conns map[net.Conn]bool
}

// ServePerf starts a perf server on port of the pod (all its addresses).
func ServePerf(ns NetNS, pod string, port uint16) (*PerfServer, error) {
	s := &PerfServer{Port: port, conns: map[net.Conn]bool{}}
	// The receive buffer is set on the listener, before listen(2), so
	// that accepted connections inherit it and its window scale.
	lc := net.ListenConfig{Control: bufferControl(unix.SO_RCVBUF, unix.SO_RCVBUFFORCE)}
	if err := ns.Do(func() (err error) {
		s.ln, err = lc.Listen(context.Background(), "tcp4", ":"+strconv.Itoa(int(port)))
		return err
	}); err != nil {
		return nil, fmt.Errorf("pod %s: perf server tcp/%d: %w", pod, port, err)
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address.
func (s *PerfServer) Addr() net.Addr { return s.ln.Addr() }

func (s *PerfServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = servePerfConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// Close stops the server, ends its connections and waits for them.
func (s *PerfServer) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// servePerfConn reads one connection's header and plays the server's part.
func servePerfConn(c net.Conn) error {
	var h [perfHeaderLen]byte
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Time{})
	if [4]byte(h[:4]) != perfMagic {
		return errors.New("not a perf client")
	}
	req, resp := binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
	switch h[4] {
	case 'B':
		return receiveBulk(c)
	case 'R':
		if req == 0 || resp == 0 || req > MaxRRSize || resp > MaxRRSize {
			return fmt.Errorf("rr sizes %d/%d outside 1..%d", req, resp, MaxRRSize)
		}
		return answerRR(c, int(req), int(resp))
	}
	return fmt.Errorf("unknown perf kind %q", h[4])
}

// receiveBulk counts bytes until the sender closes its side, then answers
// with the count and the time from the first byte to the end.
func receiveBulk(c net.Conn) error {
	buf := make([]byte, BulkWriteSize)
	var total uint64
	var first time.Time
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if total == 0 {
				first = time.Now()
			}
			total += uint64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	var d time.Duration
	if total > 0 {
		d = time.Since(first)
	}
	var sum [bulkSummaryLen]byte
	binary.BigEndian.PutUint64(sum[:8], total)
	binary.BigEndian.PutUint64(sum[8:], uint64(d))
	_, err := c.Write(sum[:])
	return err
}

// answerRR answers every request of req bytes with resp bytes until EOF.
func answerRR(c net.Conn, req, resp int) error {
	in, out := make([]byte, req), make([]byte, resp)
	for {
		if _, err := io.ReadFull(c, in); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if _, err := c.Write(out); err != nil {
			return err
		}
	}
}

// perfDial connects to a perf server and sends the header; a bulk
// sender's send buffer is BulkSocketBuffer.
func perfDial(ctx context.Context, ns NetNS, dst netip.AddrPort, kind byte, req, resp int) (*net.TCPConn, error) {
	var d net.Dialer
	if kind == 'B' {
		d.Control = bufferControl(unix.SO_SNDBUF, unix.SO_SNDBUFFORCE)
	}
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = d.DialContext(ctx, "tcp4", dst.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	var h [perfHeaderLen]byte
	copy(h[:4], perfMagic[:])
	h[4] = kind
	binary.BigEndian.PutUint32(h[8:], uint32(req))
	binary.BigEndian.PutUint32(h[12:], uint32(resp))
	if _, err := tc.Write(h[:]); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}

// Bulk sends as much as it can from the pod to the perf server at dst for
// d over one TCP connection (iperf3's default test, BulkWriteSize writes),
// then closes its side and takes the receiver's count: the result is the
// receiver's bytes over the receiver's time. ctx bounds the whole test,
// which lasts d plus the time to drain the socket buffers.
func Bulk(ctx context.Context, ns NetNS, dst netip.AddrPort, d time.Duration) (PerfResult, error) {
	res := PerfResult{Kind: PerfBulk}
	c, err := perfDial(ctx, ns, dst, 'B', 0, 0)
	if err != nil {
		return res, err
	}
	defer c.Close()
	res.Local = c.LocalAddr().String()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, BulkWriteSize)
	end := time.Now().Add(d)
	_ = c.SetWriteDeadline(end)
	for time.Now().Before(end) {
		if _, err := c.Write(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			return res, fmt.Errorf("send: %w", err)
		}
	}
	_ = c.SetWriteDeadline(time.Time{})
	if err := c.CloseWrite(); err != nil {
		return res, fmt.Errorf("close write: %w", err)
	}
	var sum [bulkSummaryLen]byte
	if _, err := io.ReadFull(c, sum[:]); err != nil {
		return res, fmt.Errorf("receiver's summary: %w", err)
	}
	res.Bytes = binary.BigEndian.Uint64(sum[:8])
	res.Duration = time.Duration(binary.BigEndian.Uint64(sum[8:]))
	if res.Bytes == 0 || res.Duration <= 0 {
		return res, errors.New("the receiver got nothing")
	}
	res.BitsPerSecond = float64(res.Bytes) * 8 / res.Duration.Seconds()
	return res, nil
}

// RR runs netperf's TCP_RR from the pod against the perf server at dst for
// d: one connection, one transaction in flight, each a request of req
// bytes answered by resp bytes (0 means the defaults, 100 and 200).
func RR(ctx context.Context, ns NetNS, dst netip.AddrPort, d time.Duration, req, resp int) (PerfResult, error) {
	res := PerfResult{Kind: PerfRR}
	if req == 0 {
		req = DefaultRequestSize
	}
	if resp == 0 {
		resp = DefaultResponseSize
	}
	if req < 0 || resp < 0 || req > MaxRRSize || resp > MaxRRSize {
		return res, fmt.Errorf("rr sizes %d/%d outside 1..%d", req, resp, MaxRRSize)
	}
	c, err := perfDial(ctx, ns, dst, 'R', req, resp)
	if err != nil {
		return res, err
	}
	defer c.Close()
	res.Local = c.LocalAddr().String()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	out, in := make([]byte, req), make([]byte, resp)
	var sum time.Duration
	start := time.Now()
	end := start.Add(d)
	for {
		t := time.Now()
		if !t.Before(end) {
			break
		}
		if _, err := c.Write(out); err != nil {
			return res, fmt.Errorf("request %d: %w", res.Transactions+1, err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			return res, fmt.Errorf("response %d: %w", res.Transactions+1, err)
		}
		sum += time.Since(t)
		res.Transactions++
	}
	res.Duration = time.Since(start)
	if res.Transactions == 0 {
		return res, errors.New("no transaction completed")
	}
	res.TransactionsPerSecond = float64(res.Transactions) / res.Duration.Seconds()
	res.MeanLatency = sum / time.Duration(res.Transactions)
	return res, nil
}
