package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/journey"
)

// Journeys on a second kernel are compared with the first kernel's, packet
// by packet; the outer source port (a per-boot hash) does not count, a
// verdict, a field or a missing packet does.
func TestDiffKernels(t *testing.T) {
	hop := func(ttl uint8, sport uint16) journey.Hop {
		return journey.Hop{Node: "node1", Point: journey.ToNetdev, Device: "bond0", IPSrc: "10.1.1.10", IPDst: "10.1.2.40", TTL: ttl,
			Verdict: journey.Forwarded, Outer: &journey.Outer{IPSrc: "10.255.1.11", Sport: sport, Dport: 8472}}
	}
	pkt := func(i int, ttl uint8, sport uint16, v journey.Verdict) journey.Packet {
		return journey.Packet{Index: i, Verdict: v, Hops: []journey.Hop{hop(ttl, sport)}}
	}
	base := kernelReport{Kernel: "5.10", Report: journey.Report{Packets: []journey.Packet{pkt(0, 64, 1111, journey.Delivered), pkt(3, 64, 2222, journey.Delivered)}}}
	same := kernelReport{Kernel: "7.2", Report: journey.Report{Packets: []journey.Packet{pkt(0, 64, 3333, journey.Delivered), pkt(3, 64, 4444, journey.Delivered)}}}
	if d := diffKernels([]kernelReport{base, same}); len(d) != 0 {
		t.Errorf("journeys differing only in the outer source port: %+v", d)
	}
	if base.Report.Packets[0].Hops[0].Outer.Sport != 1111 {
		t.Error("the comparison changed the report's hops")
	}
	other := kernelReport{Kernel: "4.19", Report: journey.Report{Packets: []journey.Packet{pkt(0, 63, 1111, journey.Delivered)}}}
	other.Report.Packets[0].Verdict = journey.Lost
	d := diffKernels([]kernelReport{base, same, other})
	if len(d) != 2 || d[0].Kernel != "4.19" || d[0].Index != 0 || d[1].Index != -1 || d[1].Diffs[0].Field != "packets" {
		t.Fatalf("differences %+v", d)
	}
	var fields []string
	for _, f := range d[0].Diffs {
		fields = append(fields, f.Field+"="+f.Got)
	}
	if got := strings.Join(fields, " "); got != "verdict=LOST ttl=63" {
		t.Errorf("packet 0's differences: %s", got)
	}
	var b bytes.Buffer
	res := kernelsResult{Kernels: []kernelReport{base, other}, Differences: d}
	base.Report.Kernel, other.Report.Kernel = "5.10.0-46-cloud-amd64", "4.19.304"
	res.Kernels = []kernelReport{base, other}
	if err := writeKernelsText(&b, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kernel 5.10: 5.10.0-46-cloud-amd64, 2 packet(s)\n", "kernel 4.19: 4.19.304, 1 packet(s)\n",
		"packet 0 on 4.19 differs from 5.10:\n", "  packet: verdict: got LOST, want DELIVERED\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := writeKernelsText(&b, kernelsResult{Kernels: []kernelReport{base, same}, Equal: true}); err != nil || !strings.HasSuffix(b.String(), "every journey is the same on every kernel as on 5.10\n") {
		t.Errorf("equal: %q, %v", b.String(), err)
	}
}

// --kernels conflicts with --kernel and with --out.
func TestReplayKernelsFlags(t *testing.T) {
	for args, want := range map[string]string{
		"--kernel 6.1 --kernels 5.10,7.2": "hoplab: replay: --kernel or --kernels, not both\n",
		"--kernels 5.10,7.2 --out /tmp/x": "hoplab: replay: --out takes one kernel, not --kernels\n",
	} {
		full := append([]string{"replay", "--topology", "pod-to-service", "--pcap", "../../fixtures/data/tcp-syn-vip.pcap"}, strings.Fields(args)...)
		out, errOut, code := runCLI(t, full...)
		if code != 1 || out != "" || errOut != want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", args, code, out, errOut, want)
		}
	}
}
