// Package wire implements the wires hoplab owns between VM NICs.
//
// Every NIC of a VM is a QEMU "dgram" netdev on a unix datagram socket: QEMU
// binds the NIC's own path ([Endpoint.QEMUPath]) and sends each frame to a
// path the harness binds ([Endpoint.HarnessPath]). A [Wire] joins two such
// endpoints: it forwards each frame from one side to the other, and in
// between it can record the frame in a pcapng file, count it, drop it while
// the wire is cut, hand it to taps, and it can inject frames of its own.
//
// For throughput runs, [Direct] wires two NICs to each other without the
// harness in the path.
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// MaxSocketPath is the longest unix socket path the kernel accepts (the
// size of sun_path minus its terminating NUL).
const MaxSocketPath = 107

// MaxFrame is the largest frame a wire forwards.
const MaxFrame = 65536

// Side names one end of a wire.
type Side int

// The two ends of a wire.
const (
	// A is the first endpoint given to [New] (the node, in a fabric).
	A Side = iota
	// B is the second endpoint (the ToR, in a fabric).
	B
)

// Other is the opposite side.
func (s Side) Other() Side { return 1 - s }

// String returns "A" or "B".
func (s Side) String() string {
	if s == A {
		return "A"
	}
	return "B"
}

// Endpoint is one NIC's end of a wire.
type Endpoint struct {
	// Name labels the endpoint in captures and logs ("node1:eth0").
	Name string
	// QEMUPath is the socket QEMU binds for the NIC (netdev local.path).
	QEMUPath string
	// HarnessPath is the socket the wire binds for the NIC (netdev
	// remote.path).
	HarnessPath string
}

// NewEndpoint returns an endpoint whose sockets are in dir, named after
// file (a short name unique in dir).
func NewEndpoint(name, dir, file string) (Endpoint, error) {
	e := Endpoint{
		Name:        name,
		QEMUPath:    filepath.Join(dir, file+".q"),
		HarnessPath: filepath.Join(dir, file+".h"),
	}
	if len(e.HarnessPath) > MaxSocketPath || len(e.QEMUPath) > MaxSocketPath {
		return Endpoint{}, fmt.Errorf("socket path %s longer than %d bytes: use a shorter runtime dir", e.HarnessPath, MaxSocketPath)
	}
	return e, nil
}

// Paths are the sockets of one NIC: QEMU binds Local and sends to Remote.
type Paths struct {
	// Local is the NIC's own socket (netdev local.path).
	Local string
	// Remote is where the NIC sends (netdev remote.path).
	Remote string
}

// Paths returns the sockets of the NIC at this endpoint of a harness wire.
func (e Endpoint) Paths() Paths { return Paths{Local: e.QEMUPath, Remote: e.HarnessPath} }

// Direct returns the sockets of two NICs wired straight to each other (no
// harness in the path): NIC a binds aPath and sends to bPath, NIC b the
// reverse.
func Direct(aPath, bPath string) (a, b Paths) {
	return Paths{Local: aPath, Remote: bPath}, Paths{Local: bPath, Remote: aPath}
}

// Frame is a frame seen on a wire.
type Frame struct {
	// From is the side that sent the frame (for an injected frame, the side
	// it pretends to come from).
	From Side
	// Time is when the wire saw the frame.
	Time time.Time
	// Data is the Ethernet frame; taps must not keep it after returning.
	Data []byte
	// Injected is true for frames the harness injected.
	Injected bool
	// Dropped is true when the frame was dropped (wire cut, or the peer's
	// socket not ready).
	Dropped bool
}

// DirCounters counts the frames sent by one side.
type DirCounters struct {
	// Frames is the number of frames forwarded.
	Frames uint64
	// Bytes is the number of bytes forwarded.
	Bytes uint64
	// Dropped is the number of frames dropped.
	Dropped uint64
	// Injected is the number of injected frames among Frames.
	Injected uint64
}

// Counters counts a wire's frames by sending side.
type Counters struct {
	// FromA counts frames sent by side A.
	FromA DirCounters
	// FromB counts frames sent by side B.
	FromB DirCounters
}

type dirCounters struct {
	frames, bytes, dropped, injected atomic.Uint64
}

func (d *dirCounters) load() DirCounters {
	return DirCounters{Frames: d.frames.Load(), Bytes: d.bytes.Load(), Dropped: d.dropped.Load(), Injected: d.injected.Load()}
}

// Option configures a [Wire].
type Option func(*Wire)

// WithPcap records every frame in a pcapng file at path, with one
// interface per endpoint (frames are recorded on their sender's interface).
func WithPcap(path string) Option { return func(w *Wire) { w.pcapPath = path } }

// WithLogger sets the wire's logger.
func WithLogger(l *slog.Logger) Option { return func(w *Wire) { w.log = l } }

// WithWriteTimeout bounds how long forwarding one frame may block on a
// peer that does not read; the frame is dropped after it. Default 200 ms.
func WithWriteTimeout(d time.Duration) Option { return func(w *Wire) { w.writeTimeout = d } }

// Wire forwards frames between two endpoints.
type Wire struct {
	name         string
	ends         [2]Endpoint
	socks        [2]*net.UnixConn
	peers        [2]*net.UnixAddr
	pcapPath     string
	writeTimeout time.Duration
	log          *slog.Logger

	cut      [2]atomic.Bool // cut[s]: frames sent by s are dropped
	counters [2]dirCounters
	// inflight is read-locked by send from before a frame's delivery until
	// its counters, pcap record and taps are done; Counters write-locks it,
	// so a frame that has arrived at its peer is always counted.
	inflight sync.RWMutex

	pcapMu   sync.Mutex
	pcapFile *os.File
	pcap     *pcapgo.NgWriter

	tapMu  sync.Mutex
	taps   map[int]func(Frame)
	nextID int

	wg     sync.WaitGroup
	closed atomic.Bool
}

// New binds the harness sockets of a and b and starts forwarding between
// them. QEMU may bind its sockets later; frames to a socket nobody has
// bound yet are counted as dropped.
func New(name string, a, b Endpoint, opts ...Option) (*Wire, error) {
	w := &Wire{
		name:         name,
		ends:         [2]Endpoint{a, b},
		writeTimeout: 200 * time.Millisecond,
		log:          slog.Default(),
		taps:         map[int]func(Frame){},
	}
	for _, o := range opts {
		o(w)
	}
	w.log = w.log.With("link", name)
	for i, e := range w.ends {
		_ = os.Remove(e.HarnessPath)
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: e.HarnessPath, Net: "unixgram"})
		if err != nil {
			w.closeSockets()
			return nil, fmt.Errorf("link %s: bind %s: %w", name, e.HarnessPath, err)
		}
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		w.socks[i] = c
		w.peers[i] = &net.UnixAddr{Name: e.QEMUPath, Net: "unixgram"}
	}
	if w.pcapPath != "" {
		if err := w.openPcap(); err != nil {
			w.closeSockets()
			return nil, fmt.Errorf("link %s: %w", name, err)
		}
	}
	for s := range w.socks {
		w.wg.Add(1)
		go w.forward(Side(s))
	}
	return w, nil
}

// Name is the wire's name.
func (w *Wire) Name() string { return w.name }

// Endpoint returns the endpoint of side s.
func (w *Wire) Endpoint(s Side) Endpoint { return w.ends[s] }

// PcapPath is the wire's pcapng file, or "" without capture.
func (w *Wire) PcapPath() string { return w.pcapPath }

func (w *Wire) openPcap() error {
	f, err := os.Create(w.pcapPath)
	if err != nil {
		return fmt.Errorf("create pcap: %w", err)
	}
	intf := pcapgo.DefaultNgInterface
	intf.LinkType = layers.LinkTypeEthernet
	intf.Name = w.ends[A].Name
	intf.Description = fmt.Sprintf("wire %s: frames sent by %s", w.name, w.ends[A].Name)
	ng, err := pcapgo.NewNgWriterInterface(f, intf, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		f.Close()
		return fmt.Errorf("pcap: %w", err)
	}
	intf.Name = w.ends[B].Name
	intf.Description = fmt.Sprintf("wire %s: frames sent by %s", w.name, w.ends[B].Name)
	if _, err := ng.AddInterface(intf); err != nil {
		f.Close()
		return fmt.Errorf("pcap: %w", err)
	}
	if err := ng.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("pcap: %w", err)
	}
	w.pcapFile, w.pcap = f, ng
	return nil
}

func (w *Wire) forward(from Side) {
	defer w.wg.Done()
	buf := make([]byte, MaxFrame)
	for {
		n, _, err := w.socks[from].ReadFromUnix(buf)
		if err != nil {
			if !w.closed.Load() {
				w.log.Warn("read", "side", from, "err", err)
			}
			return
		}
		w.send(from, buf[:n], false)
	}
}

// send delivers frame, sent by from, to the other side. The frame's
// counters, pcap record and taps are done before [Wire.Counters] can
// return, even though delivery comes first (its outcome decides whether
// the frame counts as dropped).
func (w *Wire) send(from Side, frame []byte, injected bool) error {
	w.inflight.RLock()
	defer w.inflight.RUnlock()
	f := Frame{From: from, Time: time.Now(), Data: frame, Injected: injected}
	var err error
	if w.cut[from].Load() {
		f.Dropped = true
		err = ErrCut
	} else {
		to := from.Other()
		_ = w.socks[to].SetWriteDeadline(time.Now().Add(w.writeTimeout))
		if _, werr := w.socks[to].WriteToUnix(frame, w.peers[to]); werr != nil {
			f.Dropped = true
			err = fmt.Errorf("link %s: deliver to %s: %w", w.name, w.ends[to].Name, werr)
		}
	}
	c := &w.counters[from]
	if f.Dropped {
		c.dropped.Add(1)
	} else {
		c.frames.Add(1)
		c.bytes.Add(uint64(len(frame)))
		if injected {
			c.injected.Add(1)
		}
		w.record(f)
	}
	w.tapMu.Lock()
	for _, t := range w.taps {
		t(f)
	}
	w.tapMu.Unlock()
	return err
}

func (w *Wire) record(f Frame) {
	if w.pcap == nil {
		return
	}
	ci := gopacket.CaptureInfo{Timestamp: f.Time, CaptureLength: len(f.Data), Length: len(f.Data), InterfaceIndex: int(f.From)}
	w.pcapMu.Lock()
	defer w.pcapMu.Unlock()
	if w.pcap == nil {
		return
	}
	if err := w.pcap.WritePacket(ci, f.Data); err == nil {
		_ = w.pcap.Flush()
	}
}

// ErrCut is returned when injecting into a cut direction.
var ErrCut = errors.New("link is cut")

// Cut drops every frame in both directions until [Wire.Restore].
func (w *Wire) Cut() { w.CutFrom(A); w.CutFrom(B) }

// CutFrom drops the frames sent by side s.
func (w *Wire) CutFrom(s Side) { w.cut[s].Store(true) }

// Restore forwards frames in both directions again.
func (w *Wire) Restore() { w.cut[A].Store(false); w.cut[B].Store(false) }

// IsCut reports whether frames sent by s are dropped.
func (w *Wire) IsCut(s Side) bool { return w.cut[s].Load() }

// Counters returns the wire's counters. It waits for the frames being
// forwarded, so every frame a peer has received is counted.
func (w *Wire) Counters() Counters {
	w.inflight.Lock()
	defer w.inflight.Unlock()
	return Counters{FromA: w.counters[A].load(), FromB: w.counters[B].load()}
}

// Inject delivers frame to side to, as if the other side had sent it. The
// frame is recorded and counted like a forwarded one.
func (w *Wire) Inject(to Side, frame []byte) error {
	return w.send(to.Other(), frame, true)
}

// InjectPcap delivers every frame of a pcap or pcapng stream to side to and
// returns how many it delivered.
func (w *Wire) InjectPcap(to Side, r io.Reader) (int, error) {
	src, err := openCapture(r)
	if err != nil {
		return 0, fmt.Errorf("link %s: inject: %w", w.name, err)
	}
	n := 0
	for {
		data, _, err := src.ReadPacketData()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("link %s: inject: read capture: %w", w.name, err)
		}
		if err := w.Inject(to, data); err != nil {
			return n, err
		}
		n++
	}
}

type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// openCapture reads a pcap or pcapng stream, told apart by its magic.
func openCapture(r io.Reader) (packetSource, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("read capture magic: %w", err)
	}
	if magic[0] == 0x0a && magic[1] == 0x0d && magic[2] == 0x0d && magic[3] == 0x0a {
		return pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
	}
	return pcapgo.NewReader(br)
}

// Tap calls f for every frame the wire sees, forwarded, injected or
// dropped, on the forwarding goroutine (f must not block nor call
// [Wire.Counters]); a frame's taps are done before Counters returns. The
// returned function removes the tap.
func (w *Wire) Tap(f func(Frame)) (remove func()) {
	w.tapMu.Lock()
	id := w.nextID
	w.nextID++
	w.taps[id] = f
	w.tapMu.Unlock()
	return func() {
		w.tapMu.Lock()
		delete(w.taps, id)
		w.tapMu.Unlock()
	}
}

func (w *Wire) closeSockets() {
	for i, c := range w.socks {
		if c != nil {
			c.Close()
			_ = os.Remove(w.ends[i].HarnessPath)
		}
	}
}

// Close stops forwarding, removes the harness sockets and finishes the
// pcapng file.
func (w *Wire) Close() error {
	if w.closed.Swap(true) {
		return nil
	}
	w.closeSockets()
	w.wg.Wait()
	w.pcapMu.Lock()
	defer w.pcapMu.Unlock()
	if w.pcap == nil {
		return nil
	}
	err := w.pcap.Flush()
	if cerr := w.pcapFile.Close(); err == nil {
		err = cerr
	}
	w.pcap = nil
	return err
}
