package wire

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// fakeNIC plays QEMU's side of an endpoint: it binds QEMUPath and sends to
// HarnessPath.
type fakeNIC struct {
	t    *testing.T
	c    *net.UnixConn
	peer *net.UnixAddr
}

func newFakeNIC(t *testing.T, e Endpoint) *fakeNIC {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: e.QEMUPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeNIC{t: t, c: c, peer: &net.UnixAddr{Name: e.HarnessPath, Net: "unixgram"}}
}

func (n *fakeNIC) send(frame []byte) {
	n.t.Helper()
	if _, err := n.c.WriteToUnix(frame, n.peer); err != nil {
		n.t.Fatal(err)
	}
}

// recv returns the next frame, or nil after wait.
func (n *fakeNIC) recv(wait time.Duration) []byte {
	n.t.Helper()
	_ = n.c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, MaxFrame)
	k, _, err := n.c.ReadFromUnix(buf)
	if err != nil {
		return nil
	}
	return buf[:k]
}

func testFrame(t *testing.T, srcPort uint16) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	udp := &layers.UDP{SrcPort: layers.UDPPort(srcPort), DstPort: 9000}
	_ = udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload("hello")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newTestWire(t *testing.T, opts ...Option) (*Wire, *fakeNIC, *fakeNIC) {
	t.Helper()
	dir, err := os.MkdirTemp("", "hl-link-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a, err := NewEndpoint("vm1:eth0", dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewEndpoint("vm2:eth0", dir, "b")
	if err != nil {
		t.Fatal(err)
	}
	w, err := New("vm1-vm2", a, b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, newFakeNIC(t, a), newFakeNIC(t, b)
}

func TestWireForwardsBothWays(t *testing.T) {
	w, na, nb := newTestWire(t)
	f1, f2 := testFrame(t, 1000), testFrame(t, 2000)
	na.send(f1)
	if got := nb.recv(time.Second); !bytes.Equal(got, f1) {
		t.Fatalf("B got %x, want %x", got, f1)
	}
	nb.send(f2)
	if got := na.recv(time.Second); !bytes.Equal(got, f2) {
		t.Fatalf("A got %x, want %x", got, f2)
	}
	c := w.Counters()
	if c.FromA.Frames != 1 || c.FromB.Frames != 1 || c.FromA.Bytes != uint64(len(f1)) {
		t.Fatalf("counters %+v", c)
	}
}

func TestWireCutDropsAndCounts(t *testing.T) {
	w, na, nb := newTestWire(t)
	w.Cut()
	na.send(testFrame(t, 1))
	if got := nb.recv(100 * time.Millisecond); got != nil {
		t.Fatalf("cut wire forwarded %x", got)
	}
	if c := w.Counters(); c.FromA.Dropped != 1 || c.FromA.Frames != 0 {
		t.Fatalf("counters after cut %+v", c)
	}
	w.Restore()
	f := testFrame(t, 2)
	na.send(f)
	if got := nb.recv(time.Second); !bytes.Equal(got, f) {
		t.Fatalf("restored wire: got %x", got)
	}
}

func TestWireCutFromOneSide(t *testing.T) {
	w, na, nb := newTestWire(t)
	w.CutFrom(A)
	na.send(testFrame(t, 1))
	f := testFrame(t, 2)
	nb.send(f)
	if got := na.recv(time.Second); !bytes.Equal(got, f) {
		t.Fatalf("B→A should flow: got %x", got)
	}
	if got := nb.recv(50 * time.Millisecond); got != nil {
		t.Fatal("A→B should be cut")
	}
}

func TestWireInjectAndTap(t *testing.T) {
	w, na, nb := newTestWire(t)
	seen := make(chan Frame, 4)
	remove := w.Tap(func(f Frame) { seen <- Frame{From: f.From, Injected: f.Injected, Data: bytes.Clone(f.Data)} })
	defer remove()
	f := testFrame(t, 3)
	if err := w.Inject(B, f); err != nil {
		t.Fatal(err)
	}
	if got := nb.recv(time.Second); !bytes.Equal(got, f) {
		t.Fatalf("injected frame not delivered to B: %x", got)
	}
	if got := na.recv(50 * time.Millisecond); got != nil {
		t.Fatal("injected frame leaked to A")
	}
	tf := <-seen
	if tf.From != A || !tf.Injected {
		t.Fatalf("tap saw %+v", tf)
	}
	if c := w.Counters(); c.FromA.Injected != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestWireInjectPcap(t *testing.T) {
	w, na, _ := newTestWire(t)
	var buf bytes.Buffer
	pw := pcapgo.NewWriter(&buf)
	if err := pw.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for i := range 3 {
		f := testFrame(t, uint16(100+i))
		frames = append(frames, f)
		if err := pw.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(f), Length: len(f)}, f); err != nil {
			t.Fatal(err)
		}
	}
	n, err := w.InjectPcap(A, &buf)
	if err != nil || n != 3 {
		t.Fatalf("InjectPcap = %d, %v", n, err)
	}
	for i, want := range frames {
		if got := na.recv(time.Second); !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %x", i, got)
		}
	}
}

func TestWirePcapngHasBothInterfaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l.pcapng")
	w, na, nb := newTestWire(t, WithPcap(path))
	fa, fb := testFrame(t, 1), testFrame(t, 2)
	na.send(fa)
	nb.recv(time.Second)
	nb.send(fb)
	na.recv(time.Second)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	var ifs []int
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		got = append(got, data)
		ifs = append(ifs, ci.InterfaceIndex)
	}
	if len(got) != 2 || !bytes.Equal(got[0], fa) || !bytes.Equal(got[1], fb) {
		t.Fatalf("pcapng holds %d frames", len(got))
	}
	if ifs[0] != 0 || ifs[1] != 1 {
		t.Fatalf("interfaces %v, want [0 1]", ifs)
	}
	if r.NInterfaces() != 2 {
		t.Fatalf("%d interfaces", r.NInterfaces())
	}
	if in, _ := r.Interface(1); in.Name != "vm2:eth0" {
		t.Fatalf("interface 1 named %q", in.Name)
	}
}

func TestWireDropsWhenPeerNotBound(t *testing.T) {
	dir := t.TempDir()
	a, _ := NewEndpoint("a", dir, "a")
	b, _ := NewEndpoint("b", dir, "b")
	w, err := New("x", a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	na := newFakeNIC(t, a)
	na.send(testFrame(t, 1))
	deadline := time.Now().Add(time.Second)
	for w.Counters().FromA.Dropped != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("counters %+v", w.Counters())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEndpointRejectsLongPaths(t *testing.T) {
	long := "/tmp/" + string(bytes.Repeat([]byte("x"), 120))
	if _, err := NewEndpoint("a", long, "a"); err == nil {
		t.Fatal("expected an error for a path over 107 bytes")
	}
}

func TestDirectPaths(t *testing.T) {
	a, b := Direct("/r/a", "/r/b")
	if a != (Paths{Local: "/r/a", Remote: "/r/b"}) || b != (Paths{Local: "/r/b", Remote: "/r/a"}) {
		t.Fatalf("Direct = %+v %+v", a, b)
	}
	e := Endpoint{QEMUPath: "/r/x.q", HarnessPath: "/r/x.h"}
	if e.Paths() != (Paths{Local: "/r/x.q", Remote: "/r/x.h"}) {
		t.Fatalf("Paths = %+v", e.Paths())
	}
}
