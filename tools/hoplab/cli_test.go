package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// runCLI runs the hoplab root command in-process with no running cluster
// visible (a private XDG_RUNTIME_DIR).
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	return runCLIHere(args...)
}

// runCLIHere runs the hoplab root command in-process in the test's
// environment as it is.
func runCLIHere(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestHelpOfEveryCommand checks that every command answers --help with
// its usage and exit status 0, and that an unknown command fails in one
// line.
func TestHelpOfEveryCommand(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRoot(&app{}), nil)
	if len(paths) < 15 {
		t.Fatalf("only %d commands: %v", len(paths), paths)
	}
	for _, p := range paths {
		t.Run(strings.Join(append([]string{"hoplab"}, p...), " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, append(p, "--help")...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if !strings.Contains(out, "Usage:") || !strings.Contains(out, "hoplab") || !strings.Contains(out, "-h, --help") {
				t.Errorf("help lacks usage:\n%s", out)
			}
		})
	}
	_, errOut, code := runCLI(t, "frobnicate")
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, `hoplab: unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
}

// ---- capture files for the input checks ----

func pcapHeader(linkType uint32, snaplen uint32) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(b[4:], 2)
	binary.LittleEndian.PutUint16(b[6:], 4)
	binary.LittleEndian.PutUint32(b[16:], snaplen)
	binary.LittleEndian.PutUint32(b[20:], linkType)
	return b
}

func pcapRecord(data []byte, origLen int) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:], 1700000000)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(b[12:], uint32(origLen))
	return append(b, data...)
}

func pcapFile(linkType uint32, frames ...[]byte) []byte {
	b := pcapHeader(linkType, 262144)
	for _, f := range frames {
		b = append(b, pcapRecord(f, len(f))...)
	}
	return b
}

var (
	pod1MAC = []byte{0x0a, 0x95, 0x7a, 0x12, 0x68, 0x13}
	lxcMAC  = []byte{0x0e, 0x6b, 0x0c, 0x06, 0xa5, 0xcb}
)

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// synFrame is a TCP SYN from pod1 to pod4:8080 with payload bytes.
func synFrame(t *testing.T, payload int) []byte {
	eth := &layers.Ethernet{SrcMAC: pod1MAC, DstMAC: lxcMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Protocol: layers.IPProtocolTCP, SrcIP: []byte{10, 1, 1, 10}, DstIP: []byte{10, 1, 2, 40}}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 8080, SYN: true, Seq: 1, Window: 64240}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, tcp, gopacket.Payload(make([]byte, payload)))
}

func ipv6Frame(t *testing.T) []byte {
	eth := &layers.Ethernet{SrcMAC: pod1MAC, DstMAC: lxcMAC, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: []byte{0xfd, 0, 15: 1}, DstIP: []byte{0xfd, 0, 15: 2}}
	udp := &layers.UDP{SrcPort: 5000, DstPort: 53}
	_ = udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, udp, gopacket.Payload([]byte("hoplab")))
}

func arpFrame(t *testing.T) []byte {
	eth := &layers.Ethernet{SrcMAC: pod1MAC, DstMAC: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: pod1MAC, SourceProtAddress: []byte{10, 1, 1, 10},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 1, 1, 1}}
	return serialize(t, eth, arp)
}

// sllFrame wraps an Ethernet frame's payload in a Linux cooked (v1) header.
func sllFrame(eth []byte) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:], 4) // sent by us
	binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:], 6)
	copy(h[6:], eth[6:12])
	copy(h[14:], eth[12:14])
	return append(h, eth[14:]...)
}

// TestReplayInputChecks runs replay on malformed and refused captures: each
// gives the documented one-line error naming the packet, before any VM is
// booted.
func TestReplayInputChecks(t *testing.T) {
	dir := t.TempDir()
	syn := synFrame(t, 0)
	withData := synFrame(t, 46)
	cases := []struct {
		name  string
		file  []byte
		extra []string
		want  string // the whole stderr line after "hoplab: FILE: "
	}{
		{"bad-magic", []byte("this is not a capture, it is a text file\n"), nil,
			"not a pcap or pcapng file"},
		{"empty", []byte{}, nil, "empty file"},
		{"truncated", append(pcapFile(1, syn), pcapRecord(syn, len(syn))[:30]...), nil,
			"packet 1 (frame 2): truncated record (file ends mid-record)"},
		{"unsupported-link-type", pcapFile(147, syn), nil,
			"unsupported link type 147"},
		{"ipv6", pcapFile(1, syn, ipv6Frame(t)), nil,
			"packet 1 (frame 2): IPv6 is not replayed: the datapath handles IPv4 only"},
		{"arp", pcapFile(1, arpFrame(t), syn), nil,
			"packet 0 (frame 1): non-IP frame is not replayed (ethertype 0x0806 ARP)"},
		{"snaplen-cut", append(pcapHeader(1, 60), append(pcapRecord(syn, len(syn)), pcapRecord(withData[:60], len(withData))...)...), nil,
			"packet 1 (frame 2): snaplen-cut packet: captured 60 of 100 bytes; capture with -s 0"},
		{"headers-cut", append(pcapHeader(1, 40), pcapRecord(syn[:40], len(syn))...), nil,
			"packet 0 (frame 1): headers cut by snaplen"},
		{"keep-l2-on-cooked", pcapFile(113, sllFrame(syn)), []string{"--keep-l2"},
			"packet 0 (frame 1): --keep-l2 needs the capture's own Ethernet header, and this capture's link type 113 has none"},
		{"all-skipped", pcapFile(1, ipv6Frame(t), arpFrame(t)), []string{"--skip-refused"},
			"nothing to replay: all 2 packet(s) were skipped"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".pcap")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"replay", "--topology", "pod-to-service", "--pcap", path}, c.extra...)
			out, errOut, code := runCLI(t, args...)
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if strings.Count(errOut, "\n") != 1 {
				t.Errorf("not one line: %q", errOut)
			}
			line := strings.TrimSuffix(errOut, "\n")
			prefix := "hoplab: " + path + ": "
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("error %q does not start with %q", line, prefix)
			}
			if got := strings.TrimPrefix(line, prefix); !strings.HasPrefix(got, c.want) {
				t.Errorf("error\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestReplayArgumentErrors covers the flags replay checks before booting.
func TestReplayArgumentErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pcap")
	if err := os.WriteFile(good, pcapFile(1, synFrame(t, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--topology", "pod-to-service"}, "hoplab: replay: --pcap is required\n"},
		{[]string{"replay", "--topology", "no-such-topology", "--pcap", good}, "hoplab: replay: "},
		{[]string{"replay", "--pcap", good}, "hoplab: replay: no --topology given and no running cluster"},
		{[]string{"replay", "--topology", "pod-to-service", "--pcap", good, "--inject", "pod9"}, `hoplab: replay: --inject: bad injection point "pod9"`},
		{[]string{"replay", "--topology", "pod-to-service", "--pcap", filepath.Join(dir, "missing.pcap")}, "hoplab: "},
	} {
		_, errOut, code := runCLI(t, c.args...)
		if code != 1 || !strings.HasPrefix(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want prefix %q", c.args, code, errOut, c.want)
		}
	}
}
