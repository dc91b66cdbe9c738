package journey

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// l7Observations is pod1 → pod4:8080 (an L7 port of pod4's ingress) as
// the collector sees the SYN: node2's to-container hands it to the proxy
// (Cilium's to-proxy trace), and later the proxy's record of the GET on
// the flow arrives.
func l7Observations(t *testing.T, verdict Verdict, reason string, status int) []Observation {
	const id = 0x4d02
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	syn := func(s, d string, ttl uint8) []byte {
		return tcpFrame(t, mac(s), mac(d), "10.1.1.10", "10.1.2.40", 40000, 8080, ttl, id)
	}
	return []Observation{
		NewObservation("pod:pod1", at(0), "node1", PodEgress, "pod1:eth0", syn("0a:01:01:01:01:0a", "0e:01:01:01:01:0a", 64)),
		NewObservation("datapath:node1", at(1), "node1", FromContainer, "lxc1a2b3c", syn("0a:01:01:01:01:0a", "0e:01:01:01:01:0a", 64)),
		NewObservation("datapath:node2", at(3), "node2", FromNetdev, "bond0", syn("52:55:00:00:02:01", "52:54:00:00:02:01", 62)),
		NewObservation("datapath:node2", at(4), "node2", "to-proxy", "lxc4d5e6f", syn("0e:02:02:02:02:28", "0a:02:02:02:02:28", 61)),
		NewL7Observation("proxy:node2", at(9), "node2", "proxy:8080", netip.MustParseAddrPort("10.1.1.10:40000"),
			netip.MustParseAddrPort("10.1.2.40:8080"), verdict, reason, L7{Method: "GET", Path: "/public/a", Status: status, Rule: "r"}),
	}
}

func l7Injected(t *testing.T) Injected {
	return Injected{Time: t0, Key: mustKey(t, tcpFrame(t, macPod1, macLXC1, "10.1.1.10", "10.1.2.40", 40000, 8080, 64, 0x4d02))}
}

func TestMergeProxyHop(t *testing.T) {
	js, unmatched := Merge([]Injected{l7Injected(t)}, l7Observations(t, Forwarded, "", 200))
	if len(unmatched) != 0 {
		t.Fatalf("unmatched %+v", unmatched)
	}
	j := js[0]
	if j.Verdict != Delivered || j.DeliveredTo != "node2:proxy" || len(j.Hops) != 4 {
		t.Fatalf("journey:\n%s", RenderPacket(j))
	}
	h := j.Hops[3]
	if h.Point != Proxy || h.Node != "node2" || h.Device != "lxc4d5e6f" || h.TTL != 61 || h.Verdict != Forwarded ||
		h.L7 == nil || *h.L7 != (L7{Method: "GET", Path: "/public/a", Status: 200, Rule: "r"}) {
		t.Errorf("proxy hop %+v (l7 %+v)", h, h.L7)
	}
	text := RenderPacket(j)
	if want := "  03 node2 proxy lxc4d5e6f\n     eth   *0e:02:02:02:02:28 -> *0a:02:02:02:02:28\n     ip    10.1.1.10 -> 10.1.2.40  ttl *61  proto tcp\n     tcp   40000 -> 8080\n     l7    *GET */public/a -> *200  rule *r\n     FORWARDED\n"; !strings.Contains(text, want) {
		t.Errorf("rendering lacks\n%s\nin\n%s", want, text)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"l7":{"method":"GET","path":"/public/a","status":200,"rule":"r"}`; !bytes.Contains(b, []byte(want)) {
		t.Errorf("JSON %s lacks %s", b, want)
	}
	rep, err := DecodeReport(strings.NewReader(`{"kernel":"6.1","packets":[{"index":0,"verdict":"DELIVERED","drop_reason":"","delivered_to":"node2:proxy","hops":[` + string(b) + `],"ct":[]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(Packet{Index: 0, Verdict: Delivered, DeliveredTo: "node2:proxy", Hops: []Hop{h}}, rep.Packets[0]); !d.Equal() {
		t.Errorf("round trip:\n%s", d)
	}
}

func TestMergeProxyDenied(t *testing.T) {
	js, _ := Merge([]Injected{l7Injected(t)}, l7Observations(t, Dropped, "Policy denied", 403))
	j := js[0]
	if j.Verdict != Dropped || j.DropReason != "Policy denied" || j.DeliveredTo != "" {
		t.Fatalf("journey:\n%s", RenderPacket(j))
	}
	if h := j.Hops[len(j.Hops)-1]; h.Point != Proxy || h.Verdict != Dropped || h.L7.Status != 403 {
		t.Errorf("last hop %+v", h)
	}
	// Diff tells a different status apart.
	want := js[0]
	want.Hops = append([]Hop(nil), j.Hops...)
	l7 := *want.Hops[3].L7
	l7.Status = 200
	want.Hops[3].L7 = &l7
	if d := Diff(want, j); d.Equal() || !strings.Contains(d.String(), "l7.status") {
		t.Errorf("diff of the status:\n%s", d)
	}
}

func TestMergeL7WithoutDatapathHop(t *testing.T) {
	obs := l7Observations(t, Forwarded, "", 200)
	obs = append(obs[:3], obs[4])
	js, _ := Merge([]Injected{l7Injected(t)}, obs)
	if h := js[0].Hops[len(js[0].Hops)-1]; h.Point != Proxy || h.Device != "proxy:8080" || h.L7 == nil || h.IPSrc != "10.1.1.10" || h.Dport != 8080 {
		t.Errorf("proxy hop %+v", h)
	}
}

func TestClaimL7(t *testing.T) {
	flow := func(src, dst string, id uint16) FlowKey {
		return FlowKey{Proto: 6, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), IPID: id}
	}
	injected := []Injected{
		{Index: 0, Time: t0, Key: flow("10.1.1.10:40000", "10.224.1.1:80", 1)},                           // SYN to the VIP
		{Index: 1, Time: t0.Add(2 * time.Millisecond), Key: flow("10.1.1.10:40000", "10.224.1.1:80", 7)}, // the GET
		{Index: 2, Time: t0, Key: flow("10.1.1.20:40001", "10.1.2.40:8080", 3)},                          // another flow
	}
	obs := func(ms int, src, dst string) Observation {
		return NewL7Observation("proxy", t0.Add(time.Duration(ms)*time.Millisecond), "node2", "proxy:8080",
			netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst), Forwarded, "", L7{Status: 200})
	}
	for _, tc := range []struct {
		name string
		o    Observation
		want int
	}{
		{"after the GET: the GET (the source matches, the VIP was translated)", obs(5, "10.1.1.10:40000", "10.1.2.40:8080"), 1},
		{"between: the SYN", obs(1, "10.1.1.10:40000", "10.1.2.40:8080"), 0},
		{"the other flow, exactly", obs(5, "10.1.1.20:40001", "10.1.2.40:8080"), 2},
		{"no flow of its own: nobody's (a shared destination alone does not tie)", obs(5, "10.1.1.30:40002", "10.9.9.9:8080"), -1},
	} {
		if got := claim(injected, tc.o); got != tc.want {
			t.Errorf("%s: claimed by %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The proxy's record may reach the host before the datapath's to-proxy
// trace: it still completes that hop.
func TestMergeL7BeforeTheTrace(t *testing.T) {
	obs := l7Observations(t, Dropped, "Policy denied", 403)
	obs[4].Time = obs[3].Time.Add(-time.Millisecond)
	js, _ := Merge([]Injected{l7Injected(t)}, obs)
	j := js[0]
	if len(j.Hops) != 4 || j.Hops[3].Point != Proxy || j.Hops[3].L7 == nil || j.Hops[3].Device != "lxc4d5e6f" || j.Verdict != Dropped {
		t.Fatalf("journey:\n%s", RenderPacket(j))
	}
}
