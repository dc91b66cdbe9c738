package workload

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// perfServer starts a perf server on loopback in the test's namespace.
func perfServer(t *testing.T) netip.AddrPort {
	t.Helper()
	s, err := ServePerf(hereNS{}, "server", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return netip.MustParseAddrPort("127.0.0.1:" + portOf(s.Addr()))
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// rawPerf opens a connection and sends a perf header by hand.
func rawPerf(t *testing.T, dst netip.AddrPort, kind byte, req, resp uint32) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp4", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var h [perfHeaderLen]byte
	copy(h[:], "HLP1")
	h[4] = kind
	binary.BigEndian.PutUint32(h[8:], req)
	binary.BigEndian.PutUint32(h[12:], resp)
	if _, err := c.Write(h[:]); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPerfServerBulkCountsEveryByte: the bulk receiver answers the
// sender's close with exactly the bytes it got and a positive time.
func TestPerfServerBulkCountsEveryByte(t *testing.T) {
	dst := perfServer(t)
	c := rawPerf(t, dst, 'B', 0, 0)
	payload := make([]byte, 300_001)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var sum [bulkSummaryLen]byte
	if _, err := io.ReadFull(c, sum[:]); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint64(sum[:8]); got != uint64(len(payload)) {
		t.Errorf("receiver counted %d bytes, want %d", got, len(payload))
	}
	if d := time.Duration(binary.BigEndian.Uint64(sum[8:])); d < 0 || d > 5*time.Second {
		t.Errorf("receiver time %v", d)
	}
}

// TestPerfServerRRAnswersExactSizes: each request of req bytes gets one
// response of exactly resp bytes, and nothing more until the next request.
func TestPerfServerRRAnswersExactSizes(t *testing.T) {
	dst := perfServer(t)
	c := rawPerf(t, dst, 'R', 3, 5)
	for i := range 3 {
		if _, err := c.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("extra bytes after the last response: %d, %v", n, err)
	}
	// A request split in two writes is still one request.
	_ = c.SetReadDeadline(time.Time{})
	c.Write([]byte("a"))
	time.Sleep(20 * time.Millisecond)
	c.Write([]byte("bc"))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
}

// TestPerfServerRejectsStrangers: a connection without the perf header,
// or with sizes out of range, is closed without an answer.
func TestPerfServerRejectsStrangers(t *testing.T) {
	dst := perfServer(t)
	for name, c := range map[string]net.Conn{
		"garbage":   rawPerf(t, dst, 'X', 1, 1),
		"rr size 0": rawPerf(t, dst, 'R', 0, 200),
		"rr huge":   rawPerf(t, dst, 'R', 100, MaxRRSize+1),
	} {
		c.Write(make([]byte, 100))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := c.Read(make([]byte, 300)); err == nil || n != 0 {
			t.Errorf("%s: answered %d bytes (%v)", name, n, err)
		}
	}
}

// TestBulkAndRR: the clients measure against the server for the time
// asked: bulk moves bytes at a positive rate over about that time; RR
// completes transactions whose mean latency is their time over their
// count.
func TestBulkAndRR(t *testing.T) {
	dst := perfServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Bulk(ctx, hereNS{}, dst, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != PerfBulk || b.Bytes < BulkWriteSize || b.BitsPerSecond <= 0 || b.Duration < 200*time.Millisecond || b.Duration > 3*time.Second {
		t.Errorf("bulk: %+v", b)
	}
	t.Logf("bulk: %d bytes in %v, %.0f Mbit/s", b.Bytes, b.Duration, b.BitsPerSecond/1e6)
	r, err := RR(ctx, hereNS{}, dst, 300*time.Millisecond, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != PerfRR || r.Transactions < 10 || r.Duration < 300*time.Millisecond || r.Duration > 2*time.Second {
		t.Errorf("rr: %+v", r)
	}
	if want := r.Duration / time.Duration(r.Transactions); r.MeanLatency <= 0 || r.MeanLatency > want {
		t.Errorf("rr mean latency %v, want at most duration/transactions %v", r.MeanLatency, want)
	}
	if got := float64(r.Transactions) / r.Duration.Seconds(); got != r.TransactionsPerSecond {
		t.Errorf("tps %v, want %v", r.TransactionsPerSecond, got)
	}
	t.Logf("rr: %d transactions in %v, %.0f/s, mean latency %v", r.Transactions, r.Duration, r.TransactionsPerSecond, r.MeanLatency)
	if _, err := RR(ctx, hereNS{}, dst, time.Millisecond, -1, 0); err == nil {
		t.Error("negative request size accepted")
	}
}

// TestPerfAcrossPods: bulk and RR between two pods' namespaces.
func TestPerfAcrossPods(t *testing.T) {
	client, server := twoPods(t)
	s, err := ServePerf(server, "pod4", 5201)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dst := netip.MustParseAddrPort("10.1.1.40:5201")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Bulk(ctx, client, dst, 200*time.Millisecond)
	if err != nil || b.Bytes == 0 {
		t.Fatalf("bulk: %+v, %v", b, err)
	}
	r, err := RR(ctx, client, dst, 200*time.Millisecond, 0, 0)
	if err != nil || r.Transactions == 0 {
		t.Fatalf("rr: %+v, %v", r, err)
	}
	if host, _, _ := net.SplitHostPort(r.Local); host != "10.1.1.10" {
		t.Errorf("rr from %s, want the client pod 10.1.1.10", r.Local)
	}
}
