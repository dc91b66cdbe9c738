//go:build vm

package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Bounds the acceptance tests hold the cluster to (TCG, 2 cores).
const (
	convergeBound = 30 * time.Second
	withdrawBound = 30 * time.Second
)

// envAttach makes the test binary the "other process" of the serve test:
// it attaches to the current cluster, replays tcp-syn-vip through it and
// prints the report as JSON.
const envAttach = "HOPLAB_TEST_ATTACH"

func TestMain(m *testing.M) {
	if os.Getenv(envAttach) != "" {
		if err := attachAndReplay(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func attachAndReplay() error {
	state, err := CurrentStateFile()
	if err != nil {
		return err
	}
	r, err := Attach(state)
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	top := r.Topology()
	p, err := ParsePoint(top, "pod1")
	if err != nil {
		return err
	}
	pkts, err := fixtures.Packets("tcp-syn-vip")
	if err != nil {
		return err
	}
	if err := r.Reset(ctx); err != nil {
		return err
	}
	rep, err := r.Replay(ctx, []Frame{{Data: pkts[0].Data, Point: p}}, ReplayOptions{})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// startPodToService boots the reference topology on HOPLAB_SERIES (default:
// the topology's kernel).
func startPodToService(t *testing.T) *Cluster {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	top, err := topologies.Builtin("pod-to-service")
	if err != nil {
		t.Fatal(err)
	}
	return StartT(t, Spec{Topology: top, Series: os.Getenv("HOPLAB_SERIES"), ConvergeTimeout: convergeBound})
}

// fixtureFrames returns a fixture's frames and its case for topology top.
func fixtureFrames(t *testing.T, top *topologies.Topology, name string) ([]Frame, fixtures.Case) {
	t.Helper()
	exp, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := fixtures.Packets(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range exp.Cases {
		if c.Topology != top.Name {
			continue
		}
		p, err := ParsePoint(top, c.Inject)
		if err != nil {
			t.Fatal(err)
		}
		var frames []Frame
		for _, pk := range pkts {
			frames = append(frames, Frame{Data: pk.Data, Point: p})
		}
		return frames, c
	}
	t.Fatalf("fixture %s has no case for %s", name, top.Name)
	return nil, fixtures.Case{}
}

func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// TestPodToService is issue 4's acceptance: the reference topology booted
// once, then BGP, a real TCP connection through the Service, CT on both
// nodes, a fixture replay, the served cluster from another "process", a
// policy change dropping new connections, and BGP withdrawal and recovery.
func TestPodToService(t *testing.T) {
	c := startPodToService(t)
	top := c.Topology()
	tm := c.Timings()
	t.Logf("kernel %s; boot %v, setup %v, BGP convergence %v, bring-up %v", c.Kernel(),
		tm.Boot.Round(time.Millisecond), tm.Setup.Round(time.Millisecond), tm.Converge.Round(time.Millisecond), tm.Total().Round(time.Millisecond))

	ok := t.Run("bgp", func(t *testing.T) {
		if tm.Converge > convergeBound {
			t.Errorf("BGP converged in %v, bound %v", tm.Converge, convergeBound)
		}
		peers, err := c.Client("tor").BGPPeers(ctx(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(peers) != 2 {
			t.Fatalf("ToR peers: %v", peers)
		}
		for _, p := range peers {
			if p.State.String() != "Established" {
				t.Errorf("ToR session %v", p)
			}
		}
		routes, err := c.Client("tor").KernelRoutes(ctx(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range top.Nodes {
			r := findRoute(routes, n.PodCIDR.String())
			if r == nil || r.Gateway != n.Uplink.Address.Addr().String() || r.Protocol != "bgp" {
				t.Errorf("ToR route to %s: %+v; want via %s, protocol bgp (routes %+v)", n.PodCIDR, r, n.Uplink.Address.Addr(), routes)
			}
		}
	})
	if !ok {
		t.FailNow()
	}

	t.Run("http", func(t *testing.T) {
		httpOK(t, c)
	})

	t.Run("ct", func(t *testing.T) {
		res := httpOK(t, c)
		local := res.Outcomes[0].Local // 10.1.1.10:port
		n1, err := c.Client("node1").CTList(ctx(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n2, err := c.Client("node2").CTList(ctx(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var svc *nodeapi.CTRow
		for i, r := range n1 {
			if r.Direction == "SERVICE" && r.Dst.String() == "10.224.1.1:80" && r.Src.String() == local {
				svc = &n1[i]
			}
		}
		if svc == nil {
			t.Errorf("node1 has no service entry for %s -> 10.224.1.1:80:\n%s", local, ctText(n1))
		}
		out := findCT(n1, "TCP OUT "+local+" -> 10.1.2.40:8080")
		if out == nil || out.RevNATAddr != "10.224.1.1:80" {
			t.Errorf("node1 DNATed entry for %s: %+v\n%s", local, out, ctText(n1))
		}
		if in := findCT(n2, "TCP IN "+local+" -> 10.1.2.40:8080"); in == nil {
			t.Errorf("node2 has no IN entry for %s -> 10.1.2.40:8080:\n%s", local, ctText(n2))
		}
	})

	t.Run("replay", func(t *testing.T) {
		if err := c.Reset(ctx(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		frames, cs := fixtureFrames(t, top, "tcp-syn-vip")
		begin := time.Now()
		rep, err := c.Replay(ctx(t, 30*time.Second), frames, ReplayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("replay of tcp-syn-vip: %v\n%s", time.Since(begin).Round(time.Millisecond), journey.RenderPacket(rep.Packets[0]))
		checkReport(t, c.Kernel(), rep, cs)
	})

	t.Run("foreign-macs", func(t *testing.T) {
		// A user's capture carries their cluster's MACs: rewritten at
		// injection, the journey is the reference one; with KeepL2 the
		// foreign MACs reach from-container.
		frames, cs := fixtureFrames(t, top, "tcp-syn-vip")
		foreign := append([]byte(nil), frames[0].Data...)
		copy(foreign[0:12], []byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02})
		frames[0].Data = foreign
		if err := c.Reset(ctx(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		rep, err := c.Replay(ctx(t, 30*time.Second), frames, ReplayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, c.Kernel(), rep, cs)
		if err := c.Reset(ctx(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		rep, err = c.Replay(ctx(t, 30*time.Second), frames, ReplayOptions{KeepL2: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range rep.Packets[0].Hops {
			if h.Point == journey.PodEgress || h.Point == journey.FromContainer {
				if h.EthSrc != "02:aa:bb:cc:dd:02" || h.EthDst != "02:aa:bb:cc:dd:01" {
					t.Errorf("KeepL2: %s saw %s > %s", h.Point, h.EthSrc, h.EthDst)
				}
			}
		}
		t.Logf("KeepL2 with foreign MACs: %s\n%s", rep.Packets[0].Verdict, journey.RenderPacket(rep.Packets[0]))
	})

	t.Run("inject-points", func(t *testing.T) {
		// The reference SYN as it is after node1's DNAT, entering node2 from
		// the wire, and entering the ToR from node1's uplink.
		syn := dnatedSYN(t, top)
		cases := []struct {
			point  string
			points string
		}{
			{"node2:bond0", "node2/wire node2/from-netdev node2/to-container node2/pod-ingress"},
			{"tor:node1", "node1/wire tor/router node2/wire node2/from-netdev node2/to-container node2/pod-ingress"},
		}
		for i, cs := range cases {
			if err := c.Reset(ctx(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			p, err := ParsePoint(top, cs.point)
			if err != nil {
				t.Fatal(err)
			}
			frame := withIPID(t, syn, uint16(0x7e00+i))
			rep, err := c.Replay(ctx(t, 30*time.Second), []Frame{{Data: frame, Point: p}}, ReplayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pk := rep.Packets[0]
			var got []string
			for _, h := range pk.Hops {
				got = append(got, h.Node+"/"+string(h.Point))
			}
			if strings.Join(got, " ") != cs.points || pk.Verdict != journey.Delivered || pk.DeliveredTo != "pod4" {
				t.Errorf("injected at %s: %s, %s to %q; want %s\n%s", cs.point, strings.Join(got, " "), pk.Verdict, pk.DeliveredTo, cs.points, journey.RenderPacket(pk))
			}
			n2 := top.Node("node2")
			first := pk.Hops[0]
			wantSrc, wantDst := n2.TorBondMAC.String(), n2.BondMAC.String()
			if cs.point == "tor:node1" {
				wantSrc, wantDst = top.Node("node1").BondMAC.String(), top.Node("node1").TorBondMAC.String()
			}
			if first.EthSrc != wantSrc || first.EthDst != wantDst {
				t.Errorf("injected at %s with %s > %s; want %s > %s", cs.point, first.EthSrc, first.EthDst, wantSrc, wantDst)
			}
		}
	})

	t.Run("serve", func(t *testing.T) {
		state, err := c.Serve()
		if err != nil {
			t.Fatal(err)
		}
		if cur, err := CurrentStateFile(); err != nil || cur != state {
			t.Errorf("CurrentStateFile = %s, %v; want %s", cur, err, state)
		}
		r, err := Attach(state)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kernel() != c.Kernel() || r.Topology().Name != top.Name {
			t.Errorf("remote: kernel %s topology %s", r.Kernel(), r.Topology().Name)
		}
		eps, err := r.Client("node2").EndpointList(ctx(t, 10*time.Second))
		if err != nil || len(eps) != 1 || eps[0].Pod != "pod4" {
			t.Errorf("remote endpoint list of node2: %+v, %v", eps, err)
		}
		var mu sync.Mutex
		kinds := map[string]int{}
		stop, err := r.SubscribeContext(ctx(t, 30*time.Second), func(e Event) {
			mu.Lock()
			kinds[e.Kind]++
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Run(ctx(t, 30*time.Second), nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80"})
		if err != nil || len(res.Outcomes) != 1 || !res.Outcomes[0].OK {
			t.Errorf("remote http: %+v, %v", res, err)
		}
		if err := r.Reset(ctx(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		frames, cs := fixtureFrames(t, top, "tcp-syn-vip")
		rep, err := r.Replay(ctx(t, 30*time.Second), frames, ReplayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, c.Kernel(), rep, cs)
		stop()
		mu.Lock()
		if kinds[EventDatapath] == 0 || kinds[EventPod] == 0 || kinds[EventWire] == 0 {
			t.Errorf("remote subscription saw %v", kinds)
		}
		mu.Unlock()
		if err := r.Close(); err != nil {
			t.Error(err)
		}

		// Another process finds the cluster and replays through it.
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envAttach+"=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("attaching process: %v\n%s", err, stderr.String())
		}
		rep, err = journey.DecodeReport(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("attaching process's report: %v\n%s", err, out)
		}
		checkReport(t, c.Kernel(), rep, cs)
		if _, err := c.Client("node1").CTList(ctx(t, 10*time.Second)); err != nil {
			t.Errorf("cluster after the remote detached: %v", err)
		}
	})

	t.Run("policy", func(t *testing.T) {
		var mu sync.Mutex
		var drops []nodeapi.DatapathEvent
		stop := c.Subscribe(func(e Event) {
			if e.Datapath != nil && e.Datapath.Type == nodeapi.EventDrop {
				mu.Lock()
				drops = append(drops, *e.Datapath)
				mu.Unlock()
			}
		})
		defer stop()
		before := policyDenied(t, c, "node2")

		edited, err := topologies.Parse(top.File, mustEncode(t, top))
		if err != nil {
			t.Fatal(err)
		}
		edited.Policies[0].Ingress = []topologies.Rule{{}} // enforcement on, nothing allowed
		if err := c.Update(ctx(t, 30*time.Second), edited); err != nil {
			t.Fatal(err)
		}
		res, err := c.Run(ctx(t, 30*time.Second), nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientTCP, Dst: "10.224.1.1:80", Count: 3, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Outcomes {
			if o.OK {
				t.Errorf("connection allowed after the allow rule was removed: %+v", o)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		var denied []nodeapi.DatapathEvent
		for time.Now().Before(deadline) {
			mu.Lock()
			denied = denied[:0]
			for _, d := range drops {
				if d.Reason == "Policy denied" && d.Node == "node2" {
					denied = append(denied, d)
				}
			}
			mu.Unlock()
			if len(denied) > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(denied) == 0 {
			t.Errorf("no Policy denied drop event on node2 (drops: %+v)", drops)
		} else if d := denied[0]; d.Point != string(journey.ToContainer) || d.Device != top.Pod("pod4").LXCName {
			t.Errorf("drop at %s on %s; want to-container on %s", d.Point, d.Device, top.Pod("pod4").LXCName)
		}
		if after := policyDenied(t, c, "node2"); after <= before {
			t.Errorf("Policy denied counter %d → %d", before, after)
		}
		if err := c.Update(ctx(t, 30*time.Second), top); err != nil {
			t.Fatal(err)
		}
		httpOK(t, c)
	})

	t.Run("bgp-withdraw", func(t *testing.T) {
		if err := c.Client("node2").BGPStop(ctx(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		took := waitWithdrawn(t, c, "10.1.2.0/24")
		t.Logf("10.1.2.0/24 withdrawn from the ToR in %v", took.Round(time.Millisecond))
		if err := c.Reset(ctx(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		frames, _ := fixtureFrames(t, top, "tcp-syn-vip")
		rep, err := c.Replay(ctx(t, 30*time.Second), frames, ReplayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := rep.Packets[0]
		t.Logf("without a route at the ToR:\n%s", journey.RenderPacket(p))
		if p.Verdict != journey.Lost || len(p.Hops) == 0 {
			t.Fatalf("packet without a route at the ToR:\n%s", journey.RenderPacket(p))
		}
		if last := p.Hops[len(p.Hops)-1]; last.Node != "node1" || last.Point != journey.Wire {
			t.Errorf("last hop %s %s; want node1's wire toward the ToR:\n%s", last.Node, last.Point, journey.RenderPacket(p))
		}

		if err := c.Client("node2").BGPStart(ctx(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		if err := c.WaitConverged(ctx(t, convergeBound)); err != nil {
			t.Fatal(err)
		}
		t.Logf("reconverged in %v", time.Since(begin).Round(time.Millisecond))
		httpOK(t, c)
	})
}

// dnatedSYN is tcp-syn-vip's SYN as node1 sends it after DNAT: to
// 10.1.2.40:8080, TTL 63.
func dnatedSYN(t *testing.T, top *topologies.Topology) []byte {
	t.Helper()
	pkts, err := fixtures.Packets("tcp-syn-vip")
	if err != nil {
		t.Fatal(err)
	}
	pk := gopacket.NewPacket(pkts[0].Data, layers.LayerTypeEthernet, gopacket.Default)
	eth := pk.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
	ip.DstIP = top.Pod("pod4").IP.AsSlice()
	ip.TTL = 63
	tcp.DstPort = 8080
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(tcp.Payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withIPID returns frame with another IPv4 ID (checksum fixed).
func withIPID(t *testing.T, frame []byte, id uint16) []byte {
	t.Helper()
	f := append([]byte(nil), frame...)
	ip := f[14:]
	binary.BigEndian.PutUint16(ip[4:6], id)
	binary.BigEndian.PutUint16(ip[10:12], 0)
	hl := int(ip[0]&0x0f) * 4
	var sum uint32
	for i := 0; i < hl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:12], ^uint16(sum))
	return f
}

func mustEncode(t *testing.T, top *topologies.Topology) []byte {
	t.Helper()
	b, err := Encode(top)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// httpOK runs an HTTP GET from pod1 to the Service and checks pod4 answered.
func httpOK(t *testing.T, c *Cluster) nodeapi.ClientResult {
	t.Helper()
	res, err := c.Run(ctx(t, 30*time.Second), nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outcomes) != 1 || !res.Outcomes[0].OK || !strings.HasPrefix(res.Outcomes[0].Reply, "hoplab pod4 10.1.2.40:8080 from 10.1.1.10:") {
		t.Fatalf("HTTP GET pod1 → 10.224.1.1:80: %+v", res)
	}
	t.Logf("HTTP GET pod1 → 10.224.1.1:80 answered by pod4 in %v", res.Outcomes[0].RTT)
	return res
}

func checkReport(t *testing.T, kernel string, rep journey.Report, cs fixtures.Case) {
	t.Helper()
	if rep.Kernel != kernel || len(rep.Packets) != len(cs.Packets) {
		t.Fatalf("report: kernel %q, %d packets; want %q, %d", rep.Kernel, len(rep.Packets), kernel, len(cs.Packets))
	}
	for i, want := range cs.Packets {
		if d := journey.Diff(want, rep.Packets[i]); !d.Equal() {
			t.Errorf("packet %d:\n%s", i, d)
		}
	}
}

// waitWithdrawn waits until the ToR's kernel routes none of cidrs, at most
// withdrawBound, and returns how long that took.
func waitWithdrawn(t *testing.T, c *Cluster, cidrs ...string) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		routes, err := c.Client("tor").KernelRoutes(ctx(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(cidrs, func(cidr string) bool { return findRoute(routes, cidr) != nil }) {
			return time.Since(begin)
		}
		if time.Since(begin) > withdrawBound {
			t.Fatalf("the ToR still routes one of %v %v after the speakers stopped: %+v", cidrs, withdrawBound, routes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func findRoute(routes []nodeapi.KernelRoute, dst string) *nodeapi.KernelRoute {
	for i := range routes {
		if routes[i].Dst == dst {
			return &routes[i]
		}
	}
	return nil
}

func findCT(rows []nodeapi.CTRow, tuple string) *nodeapi.CTRow {
	for i := range rows {
		if rows[i].Tuple == tuple {
			return &rows[i]
		}
	}
	return nil
}

func ctText(rows []nodeapi.CTRow) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.Tuple + " " + r.Flags + " " + r.RevNATAddr + "\n")
	}
	return b.String()
}

// policyDenied sums a node's "Policy denied" counters.
func policyDenied(t *testing.T, c *Cluster, node string) uint64 {
	t.Helper()
	rows, err := c.Client(node).Metrics(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, r := range rows {
		if r.Reason == "Policy denied" {
			n += r.Packets
		}
	}
	return n
}
