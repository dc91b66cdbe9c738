package main

import (
	"bytes"
	"slices"
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
	for _, want := range []string{"kernel 5.10: 5.10.0-46-cloud-amd64, 2 packet(s), 0s\n", "kernel 4.19: 4.19.304, 1 packet(s), 0s\n",
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

// --kernels conflicts with --kernel, compares two kernels or more, and
// --diff needs it.
func TestReplayKernelsFlags(t *testing.T) {
	for args, want := range map[string]string{
		"--kernel 6.1 --kernels 5.10,7.2": "hoplab: replay: --kernel or --kernels, not both\n",
		"--kernels 5.10":                  "hoplab: replay: --kernels compares kernels: name two or more\n",
		"--diff":                          "hoplab: replay: --diff compares kernels: give --kernels A,B\n",
		"--kernel 6.1 --diff":             "hoplab: replay: --diff compares kernels: give --kernels A,B\n",
	} {
		full := append([]string{"replay", "--topology", "pod-to-service", "--pcap", "../../fixtures/data/tcp-syn-vip.pcap"}, strings.Fields(args)...)
		out, errOut, code := runCLI(t, full...)
		if code != 1 || out != "" || errOut != want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", args, code, out, errOut, want)
		}
	}
}

// An entry with a topology of its own ("7.2@FILE") gets the capture
// planned through that topology; the other entries share --topology's
// plan; a topology that cannot place the packets fails naming the entry.
func TestEntryPlans(t *testing.T) {
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	f := replayFlags{topology: "pod-to-service", pcap: "../../fixtures/data/tcp-syn-vip.pcap"}
	p, err := a.planReplay(f)
	if err != nil {
		t.Fatal(err)
	}
	variant := "testdata/pod-to-service-port-9090.yaml"
	plans, err := a.entryPlans(f, p, []string{"5.10", "7.2@" + variant, "6.1@" + variant})
	if err != nil {
		t.Fatal(err)
	}
	if plans[0] != p || plans[1] == p || plans[2] != plans[1] || plans[1].top.File != variant {
		t.Errorf("plans %p %p %p (base %p), variant's topology %s", plans[0], plans[1], plans[2], p, plans[1].top.File)
	}
	if got := plans[1].top.Policies[0].Ingress[0].ToPorts[0].Ports[0].Port; got != 9090 {
		t.Errorf("variant's policy port %d", got)
	}
	_, err = a.entryPlans(f, p, []string{"5.10", "7.2@tunnel"})
	if err != nil {
		t.Errorf("the tunnel topology places the reference SYN too: %v", err)
	}
	_, err = a.entryPlans(f, p, []string{"5.10", "7.2@no/such.yaml"})
	if err == nil || !strings.HasPrefix(err.Error(), "kernel 7.2@no/such.yaml: replay: ") {
		t.Errorf("missing topology: %v", err)
	}
}

// The kernels' clusters boot at the same time with 4 cores or more, when
// every kernel is a series named once; one at a time otherwise.
func TestParallelKernels(t *testing.T) {
	for _, c := range []struct {
		list []string
		cpus int
		want bool
	}{
		{[]string{"5.10", "7.2"}, 4, true},
		{[]string{"5.10", "7.2"}, 2, false},
		{[]string{"5.10", "/k/bzImage,/k/modules"}, 8, false},
		{[]string{"6.1", "6.1"}, 8, false},
		{[]string{"6.1", "6.1@variant.yaml"}, 8, true},
		{[]string{"6.1", "/k/bzImage@variant.yaml"}, 8, false},
	} {
		if got := parallelKernels(c.list, c.cpus); got != c.want {
			t.Errorf("%v on %d cores: %v, want %v", c.list, c.cpus, got, c.want)
		}
	}
}

// --out names one page for one other kernel, one per kernel for several.
func TestKernelsOutPaths(t *testing.T) {
	for _, c := range []struct {
		out    string
		others []string
		want   []string
	}{
		{"/r/k.html", []string{"7.2"}, []string{"/r/k.html"}},
		{"/r/k.html", []string{"6.1", "/img/bzImage-4.19.304,/img/modules"}, []string{"/r/k-6.1.html", "/r/k-bzImage-4.19.304.html"}},
		{"/r", []string{"7.2"}, []string{"/r/kernels.html"}},
		{"/r", []string{"6.1", "7.2"}, []string{"/r/kernels-6.1.html", "/r/kernels-7.2.html"}},
		{"/r", []string{"7.2@testdata/pod-to-service-port-9090.yaml", "/img/bzImage,/m@v.yaml"}, []string{"/r/kernels-7.2-pod-to-service-port-9090.html", "/r/kernels-bzImage-v.html"}},
	} {
		if got := kernelsOutPaths(c.out, c.others); !slices.Equal(got, c.want) {
			t.Errorf("%s %v: %v, want %v", c.out, c.others, got, c.want)
		}
	}
}

// --diff prints the kernels, then a line per packet alike, the journeys
// side by side for one that differs; the first differing hop is in the
// JSON too.
func TestKernelsSideBySide(t *testing.T) {
	hops := func(ttl uint8) []journey.Hop {
		return []journey.Hop{
			{Node: "node1", Point: journey.FromContainer, Device: "lxc1", IPSrc: "10.1.1.10", IPDst: "10.1.2.40", TTL: 64, Verdict: journey.Forwarded},
			{Node: "node1", Point: journey.ToNetdev, Device: "bond0", IPSrc: "10.1.1.10", IPDst: "10.1.2.40", TTL: ttl, Verdict: journey.Forwarded},
		}
	}
	pkt := func(i int, ttl uint8) journey.Packet {
		return journey.Packet{Index: i, Verdict: journey.Delivered, DeliveredTo: "pod4", Hops: hops(ttl)}
	}
	a := kernelReport{Kernel: "5.10", Report: journey.Report{Kernel: "5.10.0-46-cloud-amd64", Packets: []journey.Packet{pkt(0, 63), pkt(1, 63)}}, TookMS: 21400}
	b := kernelReport{Kernel: "7.2", Report: journey.Report{Kernel: "7.2.12+deb14-cloud-amd64", Packets: []journey.Packet{pkt(0, 63), pkt(1, 62)}}, TookMS: 23100}
	res := kernelsResult{Kernels: []kernelReport{a, b}, Differences: diffKernels([]kernelReport{a, b})}
	if len(res.Differences) != 1 || res.Differences[0].Index != 1 || res.Differences[0].FirstHop != 1 {
		t.Fatalf("differences %+v", res.Differences)
	}
	var out bytes.Buffer
	if err := writeKernelsSideBySide(&out, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kernel 5.10: 5.10.0-46-cloud-amd64, 2 packet(s), 21.4s\nkernel 7.2: 7.2.12+deb14-cloud-amd64, 2 packet(s), 23.1s\n\n",
		"packet 0: the same journey on 5.10 and 7.2: DELIVERED to pod4, 2 hops, 0 CT entries\n\n",
		"packet 1 differs between 5.10 and 7.2, first at hop 01 (node1 to-netdev bond0): ttl\n",
		"> 01 node1 to-netdev bond0",
		"    hop 01 (node1 to-netdev bond0): ttl: 63 on 5.10, 62 on 7.2\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	b.Report.Packets[1] = pkt(1, 63)
	if err := writeKernelsSideBySide(&out, kernelsResult{Kernels: []kernelReport{a, b}, Equal: true}); err != nil ||
		!strings.HasSuffix(out.String(), "packet 1: the same journey on 5.10 and 7.2: DELIVERED to pod4, 2 hops, 0 CT entries\n\nevery journey is the same on every kernel as on 5.10\n") {
		t.Errorf("equal: %q, %v", out.String(), err)
	}
}
