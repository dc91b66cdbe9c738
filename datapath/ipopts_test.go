package datapath

import (
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// withIPOptions serializes p with a 4-byte IPv4 option (NOP x3 + EOL), so
// the L4 header starts at offset 38 instead of 34.
func withIPOptions(t *testing.T, p pkt) []byte {
	t.Helper()
	ls := p.layers()
	ip := ls[1].(*layers.IPv4)
	ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...))
	b := append([]byte(nil), buf.Bytes()...)
	if b[14] != 0x46 {
		t.Fatalf("IHL byte %#x, want 0x46", b[14])
	}
	return b
}

// A packet with IPv4 options is DNATed at the right L4 offset.
func TestDNATWithIPOptions(t *testing.T) {
	dp := loadDatapath(t)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	in := fromPod(pod1, vip, 80)
	res := run(t, dp.FromContainer, withIPOptions(t, in), nil)
	res.assertVerdict(t, tcActOK)
	want := in
	want.dst, want.dport = pod4IP, 8080
	res.assertPacket(t, withIPOptions(t, want))
}
