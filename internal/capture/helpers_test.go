package capture

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

var (
	testTime = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	macPod1  = net.HardwareAddr{0x0a, 0x58, 0x0a, 0x01, 0x01, 0x0a}
	macLXC   = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}
	ipPod1   = net.IP{10, 1, 1, 10}
	ipVIP    = net.IP{10, 224, 1, 1}
)

// record is one packet to write into a test capture.
type record struct {
	data    []byte
	origLen int // 0: len(data)
}

func (r record) ci(i int) gopacket.CaptureInfo {
	ol := r.origLen
	if ol == 0 {
		ol = len(r.data)
	}
	return gopacket.CaptureInfo{Timestamp: testTime.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(r.data), Length: ol}
}

// serialize builds a packet from layers with lengths and checksums fixed.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	for _, l := range ls {
		if ip, ok := l.(gopacket.NetworkLayer); ok {
			for _, m := range ls {
				if tl, ok := m.(interface {
					SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
				}); ok {
					_ = tl.SetNetworkLayerForChecksum(ip)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

// ipv4TCP returns the IPv4 header, TCP header and payload of a SYN to the VIP.
func ipv4TCP(t testing.TB, payload int) []byte {
	return serialize(t, tcpLayers(payload)...)
}

func tcpLayers(payload int) []gopacket.SerializableLayer {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP, SrcIP: ipPod1, DstIP: ipVIP}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, SYN: true, Window: 64240}
	return []gopacket.SerializableLayer{ip, tcp, gopacket.Payload(make([]byte, payload))}
}

// ethTCP returns an Ethernet frame carrying ipv4TCP.
func ethTCP(t testing.TB, payload int) []byte {
	eth := &layers.Ethernet{SrcMAC: macPod1, DstMAC: macLXC, EthernetType: layers.EthernetTypeIPv4}
	return serialize(t, append([]gopacket.SerializableLayer{eth}, tcpLayers(payload)...)...)
}

// writePcap builds a classic pcap in memory; link types above 255 are
// patched into the header because pcapgo's LinkType is 8 bits wide.
func writePcap(t testing.TB, lt uint32, recs ...record) []byte {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, layers.LinkType(lt&0xff)); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if err := w.WritePacket(r.ci(i), r.data); err != nil {
			t.Fatal(err)
		}
	}
	out := b.Bytes()
	binary.LittleEndian.PutUint32(out[20:24], lt)
	return out
}

// writePcapng builds a pcapng in memory with pcapgo's NgWriter.
func writePcapng(t testing.TB, lt layers.LinkType, recs ...record) []byte {
	t.Helper()
	var b bytes.Buffer
	intf := pcapgo.DefaultNgInterface
	intf.LinkType = lt
	intf.OS = "linux"
	w, err := pcapgo.NewNgWriterInterface(&b, intf, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "hoplab test"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if err := w.WritePacket(r.ci(i), r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// ngBlock builds one little-endian pcapng block by hand.
func ngBlock(typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	out := binary.LittleEndian.AppendUint32(nil, typ)
	out = binary.LittleEndian.AppendUint32(out, n)
	out = append(out, body...)
	return binary.LittleEndian.AppendUint32(out, n)
}

// ngSHB, ngIDB and ngEPB build the three blocks of a minimal pcapng.
func ngSHB() []byte {
	body := binary.LittleEndian.AppendUint32(nil, ngByteOrderMagic)
	body = binary.LittleEndian.AppendUint16(body, 1)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint64(body, ^uint64(0))
	return ngBlock(ngSectionHeader, body)
}

func ngIDB(lt uint16, opts ...byte) []byte {
	body := binary.LittleEndian.AppendUint16(nil, lt)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint32(body, 0)
	return ngBlock(ngInterfaceDesc, append(body, opts...))
}

func ngEPB(ifc uint32, data []byte, origLen int) []byte {
	body := binary.LittleEndian.AppendUint32(nil, ifc)
	us := uint64(testTime.UnixMicro())
	body = binary.LittleEndian.AppendUint32(body, uint32(us>>32))
	body = binary.LittleEndian.AppendUint32(body, uint32(us))
	body = binary.LittleEndian.AppendUint32(body, uint32(len(data)))
	body = binary.LittleEndian.AppendUint32(body, uint32(origLen))
	return ngBlock(ngEnhancedPacket, append(body, data...))
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// writeTemp writes b to a file in t.TempDir and returns its path.
func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readBytes reads a capture held in memory.
func readBytes(t testing.TB, name string, b []byte) ([]Packet, error) {
	t.Helper()
	return ReadFile(writeTemp(t, name, b))
}

// sllHeader builds a Linux cooked v1 header.
func sllHeader(pktType, arphrd uint16, addr []byte, proto uint16) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:2], pktType)
	binary.BigEndian.PutUint16(h[2:4], arphrd)
	binary.BigEndian.PutUint16(h[4:6], uint16(len(addr)))
	copy(h[6:14], addr)
	binary.BigEndian.PutUint16(h[14:16], proto)
	return h
}

// sll2Header builds a Linux cooked v2 header.
func sll2Header(proto uint16, ifindex uint32, arphrd uint16, pktType uint8, addr []byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:2], proto)
	binary.BigEndian.PutUint32(h[4:8], ifindex)
	binary.BigEndian.PutUint16(h[8:10], arphrd)
	h[10] = pktType
	h[11] = uint8(len(addr))
	copy(h[12:20], addr)
	return h
}

// ms is i milliseconds, the spacing of test records.
func ms(i int) time.Duration { return time.Duration(i) * time.Millisecond }
