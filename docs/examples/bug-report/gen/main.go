// Command gen writes the bug-report example's capture.pcap: what
// `tcpdump -i any -w capture.pcap 'tcp port 80 or tcp port 8080'` records on
// worker-a when pod web (10.20.1.15) connects to the orders service
// 10.96.40.10:80 and gets no answer. The capture is Linux cooked (SLL, link
// type 113), as tcpdump -i any writes it, and holds every SYN twice — once
// on web's lxc device as the pod sends it, once on bond0 after DNAT to the
// backend 10.20.2.25:8080 with the TTL decremented — plus the kernel's
// retransmission one second later. The output is byte-for-byte reproducible
// (fixed timestamps, IP IDs and sequence numbers):
//
//	go run ./docs/examples/bug-report/gen
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func main() {
	out := flag.String("o", "docs/examples/bug-report/capture.pcap", "file to write")
	flag.Parse()
	b, err := Generate()
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// The reporter's cluster: its own MACs (not the topology's; replay rewrites
// them), the pod, the service and the backend.
var (
	webMAC   = mustMAC("9a:3c:51:0e:77:12") // web's eth0 in the reporter's cluster
	bondMAC  = mustMAC("3c:ec:ef:42:10:0b") // worker-a's bond0
	web      = net.IPv4(10, 20, 1, 15)
	vip      = net.IPv4(10, 96, 40, 10)
	orders   = net.IPv4(10, 20, 2, 25)
	start    = time.Date(2026, 11, 20, 14, 2, 7, 118_302_000, time.UTC)
	retrans  = time.Second + 2_150*time.Microsecond
	bondLag  = 41 * time.Microsecond
	sport    = layers.TCPPort(51234)
	firstID  = uint16(0x3f21)
	firstSeq = uint32(3_141_592_653)
)

// SLL packet types (the direction tcpdump -i any records).
const (
	sllHost     = 0 // to us: web's SYN arriving on its lxc device
	sllOutgoing = 4 // from us: the SYN leaving bond0
)

// Generate returns the capture file's bytes.
func Generate() ([]byte, error) {
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(262144, layers.LinkTypeLinuxSLL); err != nil {
		return nil, err
	}
	for i, at := range []time.Duration{0, retrans} {
		id := firstID + uint16(i)
		// On lxc: as web sends it, to the service VIP.
		tsval := uint32(2_840_114_411) + uint32(at/time.Millisecond)
		lxc, err := syn(web, vip, 80, 64, id, tsval)
		if err != nil {
			return nil, err
		}
		// On bond0: DNATed to the backend, routed (TTL 63).
		bond, err := syn(web, orders, 8080, 63, id, tsval)
		if err != nil {
			return nil, err
		}
		for _, r := range []struct {
			t       time.Duration
			pktType uint16
			mac     net.HardwareAddr
			ip      []byte
		}{{at, sllHost, webMAC, lxc}, {at + bondLag, sllOutgoing, bondMAC, bond}} {
			rec := append(sll(r.pktType, r.mac), r.ip...)
			ci := gopacket.CaptureInfo{Timestamp: start.Add(r.t), CaptureLength: len(rec), Length: len(rec)}
			if err := w.WritePacket(ci, rec); err != nil {
				return nil, err
			}
		}
	}
	return buf.Bytes(), nil
}

// syn returns an IPv4 TCP SYN from web as Linux sends it (DF, MSS, SACK,
// timestamps, window scale); tsval is the TCP timestamp.
func syn(src, dst net.IP, dport layers.TCPPort, ttl uint8, id uint16, tsval uint32) ([]byte, error) {
	ip := &layers.IPv4{Version: 4, TTL: ttl, Id: id, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
	ts := make([]byte, 8)
	binary.BigEndian.PutUint32(ts, tsval)
	tcp := &layers.TCP{SrcPort: sport, DstPort: dport, Seq: firstSeq, SYN: true, Window: 64240, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: ts},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp)
	return buf.Bytes(), err
}

// sll is a Linux cooked capture (v1) header for an IPv4 packet.
func sll(pktType uint16, mac net.HardwareAddr) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:], pktType)
	binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:], uint16(len(mac)))
	copy(h[6:14], mac)
	binary.BigEndian.PutUint16(h[14:], 0x0800)
	return h
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
