package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func mustRead(t *testing.T, name string, b []byte) []Packet {
	t.Helper()
	pkts, err := readBytes(t, name, b)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	return pkts
}

// wantErr checks that err is a one-line *Error naming the file (and index,
// when index ≥ 0) and wrapping sentinel, and that it mentions every word.
func wantErr(t *testing.T, err error, sentinel error, index int, words ...string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v, want %v", err, sentinel)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T is not *capture.Error", err)
	}
	if ce.Index != index {
		t.Errorf("error index %d, want %d (%v)", ce.Index, index, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans several lines: %q", msg)
	}
	if !strings.Contains(msg, ce.File) || ce.File == "" {
		t.Errorf("error %q does not name the file", msg)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
	t.Logf("error: %v", err)
}

func TestEthernetPcap(t *testing.T) {
	frame := ethTCP(t, 10)
	pkts := mustRead(t, "eth.pcap", writePcap(t, LinkTypeEthernet, record{data: frame}, record{data: frame}))
	if len(pkts) != 2 {
		t.Fatalf("got %d packets, want 2", len(pkts))
	}
	for i, p := range pkts {
		if p.Index != i || !bytes.Equal(p.Data, frame) || p.OrigLen != len(frame) || p.Flags != 0 || !p.Replayable() {
			t.Errorf("packet %d: %+v", i, p)
		}
		if want := testTime.Add(ms(i)); !p.Timestamp.Equal(want) {
			t.Errorf("packet %d timestamp %v, want %v", i, p.Timestamp, want)
		}
	}
}

func TestEthernetPcapng(t *testing.T) {
	frame := ethTCP(t, 0)
	r, err := NewReader(bytes.NewReader(writePcapng(t, layers.LinkTypeEthernet, record{data: frame}, record{data: frame})), "eth.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	if r.Format() != FormatPcapng {
		t.Errorf("format %v, want pcapng", r.Format())
	}
	for i := 0; i < 2; i++ {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if p.Index != i || !bytes.Equal(p.Data, frame) || p.LinkType != LinkTypeEthernet || !p.Timestamp.Equal(testTime.Add(ms(i))) {
			t.Errorf("packet %d: %+v", i, p)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after last packet: %v, want io.EOF", err)
	}
}

func TestBigEndianNanosecondPcap(t *testing.T) {
	frame := ethTCP(t, 0)
	hdr := make([]byte, 24)
	binary.BigEndian.PutUint32(hdr[0:4], magicNanos)
	binary.BigEndian.PutUint16(hdr[4:6], 2)
	binary.BigEndian.PutUint16(hdr[6:8], 4)
	binary.BigEndian.PutUint32(hdr[16:20], 65535)
	binary.BigEndian.PutUint32(hdr[20:24], LinkTypeEthernet)
	rec := make([]byte, 16)
	binary.BigEndian.PutUint32(rec[0:4], uint32(testTime.Unix()))
	binary.BigEndian.PutUint32(rec[4:8], 123456789)
	binary.BigEndian.PutUint32(rec[8:12], uint32(len(frame)))
	binary.BigEndian.PutUint32(rec[12:16], uint32(len(frame)))
	pkts := mustRead(t, "be.pcap", concat(hdr, rec, frame))
	if got := pkts[0].Timestamp.Nanosecond(); got != 123456789 || !bytes.Equal(pkts[0].Data, frame) {
		t.Errorf("ns %d, packet %+v", got, pkts[0])
	}
}

func TestGzipPcap(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(writePcap(t, LinkTypeEthernet, record{data: ethTCP(t, 0)}))
	zw.Close()
	if pkts := mustRead(t, "eth.pcap.gz", b.Bytes()); len(pkts) != 1 {
		t.Errorf("got %d packets", len(pkts))
	}
}

func TestSLLConvertedToEthernet(t *testing.T) {
	ip := ipv4TCP(t, 4)
	raw := append(sllHeader(4 /* outgoing */, arphrdEther, macPod1, etherTypeIPv4), ip...)
	p := mustRead(t, "any.pcap", writePcap(t, LinkTypeLinuxSLL, record{data: raw}))[0]
	if !p.Flags.Has(L2Synthesized) || !p.Replayable() {
		t.Fatalf("flags %v refusal %v", p.Flags, p.Refusal)
	}
	if got := p.Data[6:12]; !bytes.Equal(got, macPod1) {
		t.Errorf("src MAC %x, want the SLL address %x", got, macPod1)
	}
	if got := p.Data[0:6]; !bytes.Equal(got, make([]byte, 6)) {
		t.Errorf("dst MAC %x, want the zero placeholder", got)
	}
	if et := binary.BigEndian.Uint16(p.Data[12:14]); et != etherTypeIPv4 {
		t.Errorf("ethertype %x", et)
	}
	if !bytes.Equal(p.Data[14:], ip) || p.OrigLen != len(ip)+14 {
		t.Errorf("payload or origlen wrong: origlen %d", p.OrigLen)
	}
}

func TestSLL2ConvertedToEthernet(t *testing.T) {
	ip := ipv4TCP(t, 0)
	raw := append(sll2Header(etherTypeIPv4, 7, arphrdEther, 0, macPod1), ip...)
	for name, b := range map[string][]byte{
		"any2.pcap":   writePcap(t, LinkTypeLinuxSLL2, record{data: raw}),
		"any2.pcapng": concat(ngSHB(), ngIDB(uint16(LinkTypeLinuxSLL2)), ngEPB(0, raw, len(raw))),
	} {
		p := mustRead(t, name, b)[0]
		if p.LinkType != LinkTypeLinuxSLL2 || p.IfIndex != 7 || !p.Flags.Has(L2Synthesized) {
			t.Errorf("%s: %+v", name, p)
		}
		if !bytes.Equal(p.Data[6:12], macPod1) || !bytes.Equal(p.Data[14:], ip) {
			t.Errorf("%s: frame %x", name, p.Data)
		}
	}
}

func TestSLLLoopbackAndNonEthertype(t *testing.T) {
	ip := ipv4TCP(t, 0)
	lo := append(sllHeader(0, arphrdLoopback, make([]byte, 6), etherTypeIPv4), ip...)
	llc := append(sllHeader(0, arphrdEther, macPod1, 0x0004), 0xaa, 0xaa, 0x03)
	nl := append(sllHeader(0, arphrdNetlink, nil, 0x0000), make([]byte, 16)...)
	pkts := mustRead(t, "mixed.pcap", writePcap(t, LinkTypeLinuxSLL, record{data: lo}, record{data: llc}, record{data: nl}))
	if !pkts[0].Replayable() || !pkts[0].Flags.Has(L2Synthesized) {
		t.Errorf("loopback packet: %+v", pkts[0])
	}
	for _, i := range []int{1, 2} {
		if pkts[i].Replayable() {
			t.Fatalf("packet %d replayable", i)
		}
		wantErr(t, pkts[i].Refusal, ErrNotConvertible, i, "mixed.pcap")
	}
}

func TestRawIP(t *testing.T) {
	ip := ipv4TCP(t, 0)
	ip6 := serialize(t, &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: []byte{0xfd, 0, 15: 1}, DstIP: []byte{0xfd, 0, 15: 2}},
		&layers.UDP{SrcPort: 1, DstPort: 2})
	cases := []struct {
		lt    uint32
		data  []byte
		et    uint16
		flags Flags
	}{
		{LinkTypeRaw, ip, etherTypeIPv4, L2Synthesized},
		{LinkTypeRaw, ip6, etherTypeIPv6, L2Synthesized | IPv6},
		{LinkTypeIPv4, ip, etherTypeIPv4, L2Synthesized},
		{LinkTypeIPv6, ip6, etherTypeIPv6, L2Synthesized | IPv6},
		{LinkTypeLoop, append([]byte{0, 0, 0, 2}, ip...), etherTypeIPv4, L2Synthesized},
		{LinkTypeNull, append([]byte{2, 0, 0, 0}, ip...), etherTypeIPv4, L2Synthesized},
	}
	for _, c := range cases {
		p := mustRead(t, "raw.pcap", writePcap(t, c.lt, record{data: c.data}))[0]
		if et := binary.BigEndian.Uint16(p.Data[12:14]); et != c.et || p.Flags != c.flags || !p.Replayable() {
			t.Errorf("link type %d: ethertype %x flags %v refusal %v", c.lt, et, p.Flags, p.Refusal)
		}
	}
}

func TestVLANStripped(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: macPod1, DstMAC: macLXC, EthernetType: layers.EthernetTypeQinQ}
	outer := &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q}
	inner := &layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeIPv4}
	frame := serialize(t, append([]gopacket.SerializableLayer{eth, outer, inner}, tcpLayers(0)...)...)
	p := mustRead(t, "vlan.pcap", writePcap(t, LinkTypeEthernet, record{data: frame}))[0]
	want := ethTCP(t, 0)[:54] // without the Ethernet minimum-size padding
	if !bytes.Equal(p.Data, want) {
		t.Errorf("frame\n %x\nwant\n %x", p.Data, want)
	}
	if !p.Flags.Has(VLANStripped) || len(p.VLANs) != 2 || p.VLANs[0] != 100 || p.VLANs[1] != 200 || p.OrigLen != len(want) {
		t.Errorf("flags %v vlans %v origlen %d", p.Flags, p.VLANs, p.OrigLen)
	}
}

func TestIPv6AndARPPassThrough(t *testing.T) {
	eth6 := &layers.Ethernet{SrcMAC: macPod1, DstMAC: macLXC, EthernetType: layers.EthernetTypeIPv6}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: []byte{0xfd, 0, 15: 1}, DstIP: []byte{0xfd, 0, 15: 2}}
	f6 := serialize(t, eth6, ip6, gopacket.Payload(make([]byte, 8)))
	arp := serialize(t, &layers.Ethernet{SrcMAC: macPod1, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: macPod1, SourceProtAddress: ipPod1, DstHwAddress: make([]byte, 6), DstProtAddress: ipVIP})
	pkts := mustRead(t, "v6.pcap", writePcap(t, LinkTypeEthernet, record{data: f6}, record{data: arp}))
	if !pkts[0].Flags.Has(IPv6) || !pkts[0].Replayable() || !bytes.Equal(pkts[0].Data, f6) {
		t.Errorf("IPv6: %+v", pkts[0])
	}
	if !pkts[1].Flags.Has(NonIP) || !pkts[1].Replayable() {
		t.Errorf("ARP: %+v", pkts[1])
	}
}

func TestSnaplenCut(t *testing.T) {
	full := ethTCP(t, 100)
	payloadCut := record{data: full[:14+20+20+10], origLen: len(full)}
	tcpCut := record{data: full[:14+20+8], origLen: len(full)}
	ipCut := record{data: full[:14+12], origLen: len(full)}
	pkts := mustRead(t, "cut.pcap", writePcap(t, LinkTypeEthernet, record{data: full}, payloadCut, tcpCut, ipCut))
	if p := pkts[1]; !p.Flags.Has(Truncated) || !p.Replayable() || p.OrigLen != len(full) {
		t.Errorf("payload cut: flags %v refusal %v origlen %d", p.Flags, p.Refusal, p.OrigLen)
	}
	wantErr(t, pkts[2].Refusal, ErrHeadersCut, 2, "TCP header", "8 of 20")
	wantErr(t, pkts[3].Refusal, ErrHeadersCut, 3, "IPv4 header", "12 of 20")
	if !pkts[2].Flags.Has(Truncated) {
		t.Errorf("flags %v", pkts[2].Flags)
	}
}

func TestMalformedIPRefused(t *testing.T) {
	f := ethTCP(t, 0)
	badIHL := append([]byte(nil), f...)
	badIHL[14] = 0x43
	longTotal := append([]byte(nil), f...)
	binary.BigEndian.PutUint16(longTotal[16:18], 1500)
	pkts := mustRead(t, "bad.pcap", writePcap(t, LinkTypeEthernet, record{data: badIHL}, record{data: longTotal}, record{data: f[:10]}))
	wantErr(t, pkts[0].Refusal, ErrBadHeader, 0, "header length 12")
	wantErr(t, pkts[1].Refusal, ErrBadHeader, 1, "total length 1500")
	wantErr(t, pkts[2].Refusal, ErrBadHeader, 2, "Ethernet header")
}

func TestTruncatedFile(t *testing.T) {
	frame := ethTCP(t, 0)
	pcap := writePcap(t, LinkTypeEthernet, record{data: frame}, record{data: frame})
	ng := writePcapng(t, layers.LinkTypeEthernet, record{data: frame}, record{data: frame})
	cases := map[string][]byte{
		"mid-data.pcap":     pcap[:len(pcap)-5],
		"mid-header.pcap":   pcap[:len(pcap)-len(frame)-6],
		"no-data.pcap":      pcap[:len(pcap)-len(frame)],
		"mid-block.pcapng":  ng[:len(ng)-7],
		"mid-header.pcapng": ng[:len(ng)-len(frame)-30],
	}
	for name, b := range cases {
		pkts, err := readBytes(t, name, b)
		wantErr(t, err, ErrTruncatedFile, 1, name, "packet 1")
		if len(pkts) != 1 {
			t.Errorf("%s: %d packets before the error, want 1", name, len(pkts))
		}
	}
	_, err := readBytes(t, "header.pcap", pcap[:20])
	wantErr(t, err, ErrTruncatedFile, -1, "20 of 24")
}

func TestUnsupportedLinkType(t *testing.T) {
	_, err := readBytes(t, "wifi.pcap", writePcap(t, 105, record{data: make([]byte, 30)}))
	wantErr(t, err, ErrUnsupportedLinkType, -1, "105", "IEEE802_11")
	ng := concat(ngSHB(), ngIDB(uint16(LinkTypeEthernet)), ngIDB(147), ngEPB(0, ethTCP(t, 0), 60), ngEPB(1, make([]byte, 20), 20))
	pkts, err := readBytes(t, "mixed.pcapng", ng)
	wantErr(t, err, ErrUnsupportedLinkType, 1, "147")
	if len(pkts) != 1 {
		t.Errorf("%d packets before the unsupported one", len(pkts))
	}
}

func TestNotACapture(t *testing.T) {
	cases := []struct {
		name     string
		data     []byte
		sentinel error
		words    []string
	}{
		{"empty.pcap", nil, ErrEmpty, nil},
		{"text.pcap", []byte("<!DOCTYPE html><html>"), ErrNotCapture, []string{"3c 21 44 4f"}},
		{"tiny.pcap", []byte{1, 2}, ErrNotCapture, []string{"too short"}},
		{"kuz.pcap", binary.LittleEndian.AppendUint32(make([]byte, 0, 24), magicKuznetzov), ErrNotCapture, []string{"Kuznetzov"}},
		{"v3.pcap", func() []byte { b := writePcap(t, 1); b[4] = 3; return b }(), ErrNotCapture, []string{"version 3.4"}},
		{"gzip-garbage.pcap.gz", []byte{0x1f, 0x8b, 1, 2, 3}, ErrNotCapture, []string{"gzip"}},
		{"only-header.pcap", writePcap(t, 1), ErrNoPackets, nil},
		{"only-header.pcapng", concat(ngSHB(), ngIDB(1)), ErrNoPackets, nil},
	}
	for _, c := range cases {
		_, err := readBytes(t, c.name, c.data)
		wantErr(t, err, c.sentinel, -1, c.words...)
	}
}

func TestMalformedPcapng(t *testing.T) {
	frame := ethTCP(t, 0)
	epb := ngEPB(0, frame, len(frame))
	hugeCaplen := append([]byte(nil), epb...)
	binary.LittleEndian.PutUint32(hugeCaplen[20:24], 0xfffffff0)
	badTrailer := append([]byte(nil), epb...)
	badTrailer[len(badTrailer)-1] = 0x7f
	hugeBlock := append([]byte(nil), epb...)
	binary.LittleEndian.PutUint32(hugeBlock[4:8], 0x7ffffff0)
	tsresol := []byte{9, 0, 1, 0, 0x7f, 0, 0, 0} // 10^-127 s
	cases := map[string][]byte{
		"huge-caplen":    concat(ngSHB(), ngIDB(1), hugeCaplen),
		"bad-trailer":    concat(ngSHB(), ngIDB(1), badTrailer),
		"huge-block":     concat(ngSHB(), ngIDB(1), hugeBlock),
		"no-interface":   concat(ngSHB(), epb),
		"tsresol":        concat(ngSHB(), ngIDB(1, tsresol...), epb),
		"option-overrun": concat(ngSHB(), ngIDB(1, 2, 0, 0xff, 0x00, 'a', 'b', 'c', 'd'), epb),
		"no-shb":         concat(ngIDB(1), epb),
	}
	for name, b := range cases {
		if name == "no-shb" {
			// Starts with the IDB type, so it is not recognised as pcapng.
			_, err := readBytes(t, name, b)
			wantErr(t, err, ErrNotCapture, -1)
			continue
		}
		_, err := readBytes(t, name+".pcapng", b)
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncatedFile) {
			t.Errorf("%s: %v, want a malformed-record error", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestFlagsString(t *testing.T) {
	if got := (Truncated | IPv6).String(); got != "truncated,ipv6" {
		t.Errorf("got %q", got)
	}
	if FormatPcap.String() != "pcap" || FormatPcapng.String() != "pcapng" {
		t.Error("format names")
	}
}
