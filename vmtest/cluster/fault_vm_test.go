//go:build vm

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/agent/roles"
	"github.com/hoplab/hoplab/vmtest/agent/workload"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Sizes of the fault tests.
const (
	// flapCuts is how many times the link-flap storm cuts a bond slave.
	flapCuts = 100
	// bgpRestarts is how many times a node's BGP speaker restarts.
	bgpRestarts = 20
	// updates is how many node-updates race the traffic.
	updates = 20
	// streams is how many long-lived connections run during a fault.
	streams = 4
	// streamWait bounds each answer of a stream: a request that waits
	// longer counts as a lost connection.
	streamWait = 10 * time.Second
)

// faultTopology parses testdata/name.yaml.
func faultTopology(t *testing.T, name string) *topologies.Topology {
	t.Helper()
	file := filepath.Join("testdata", name+".yaml")
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	top, err := topologies.Parse(file, text)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// streamLoad keeps `streams` long-lived connections from pod1 to the
// Service until stop is called: one http-stream after the other, each of
// them for at most a few seconds, so every moment of the fault is covered
// by open connections.
type streamLoad struct {
	stop func()
	done chan struct{}
	// Filled when done is closed.
	conns, requests int
	maxWait         time.Duration
	failures        []string
	err             error
}

func startStreams(c *Cluster) *streamLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &streamLoad{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
			res, err := c.Run(rctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTPStream, Dst: "10.224.1.1:80",
				Count: streams, Duration: 5 * time.Second, Timeout: streamWait})
			rcancel()
			if err != nil {
				l.err = err
				return
			}
			for _, o := range res.Outcomes {
				l.add(o)
			}
		}
	}()
	return l
}

func (l *streamLoad) add(o workload.Outcome) {
	l.conns++
	l.requests += o.Requests
	l.maxWait = max(l.maxWait, o.MaxWait)
	if !o.OK {
		l.failures = append(l.failures, fmt.Sprintf("%s: %s", o.Local, o.Error))
	}
}

// end stops the load, waits for the running streams and fails the test on
// any lost connection.
func (l *streamLoad) end(t *testing.T, what string) {
	t.Helper()
	l.stop()
	<-l.done
	t.Logf("%s: %d connections, %d requests, longest wait for an answer %v", what, l.conns, l.requests, l.maxWait.Round(time.Millisecond))
	if l.err != nil {
		t.Fatal(l.err)
	}
	if l.conns == 0 || l.requests == 0 {
		t.Errorf("%s: no traffic ran", what)
	}
	if len(l.failures) > 0 {
		t.Errorf("%s: %d of %d connections lost: %s", what, len(l.failures), l.conns, strings.Join(l.failures, "; "))
	}
}

// drops sums each node's drop counters (every reason but Forwarded) by
// "node reason direction".
func drops(t *testing.T, c *Cluster) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, n := range c.Topology().Nodes {
		rows, err := c.Client(n.Name).Metrics(ctx(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Reason != "Forwarded" {
				m[n.Name+" "+r.Reason+" "+r.Direction] += r.Packets
			}
		}
	}
	return m
}

// newDrops lists the counters of after that grew since before.
func newDrops(before, after map[string]uint64) []string {
	var out []string
	for k, v := range after {
		if v > before[k] {
			out = append(out, fmt.Sprintf("%s +%d", k, v-before[k]))
		}
	}
	slices.Sort(out)
	return out
}

// lacpInUse are the LACP port state bits of a port that carries traffic:
// synchronization, collecting and distributing (IEEE 802.1AX).
const lacpInUse = 0x08 | 0x10 | 0x20

// bondReady reports whether every slave of bond on the VM has its link up
// and, for 802.3ad, is in the bond's active aggregator with LACP converged
// at both ends. It reads sysfs
// (the agent's /proc/net is not necessarily the node's namespace's).
func bondReady(ctx context.Context, vm *vmtest.VM, bond string) (bool, string, error) {
	read := func(path string) (string, error) {
		b, err := vm.Agent().ReadFile(ctx, path)
		return strings.TrimSpace(string(b)), err
	}
	dir := "/sys/class/net/" + bond + "/bonding/"
	slaves, err := read(dir + "slaves")
	if err != nil {
		return false, "", err
	}
	mode, err := read(dir + "mode")
	if err != nil {
		return false, "", err
	}
	active := ""
	if strings.HasPrefix(mode, "802.3ad") {
		// Empty while no aggregator is active.
		active, _ = read(dir + "ad_aggregator")
	}
	state := fmt.Sprintf("%s (%s): slaves %q, active aggregator %q", bond, mode, slaves, active)
	if len(strings.Fields(slaves)) != vmtest.UplinkNICs {
		return false, state, nil
	}
	ready := true
	for _, sl := range strings.Fields(slaves) {
		mii, err := read("/sys/class/net/" + sl + "/bonding_slave/mii_status")
		if err != nil {
			return false, state, err
		}
		state += fmt.Sprintf("; %s %s", sl, mii)
		ready = ready && mii == "up"
		if strings.HasPrefix(mode, "802.3ad") {
			agg, err := read("/sys/class/net/" + sl + "/bonding_slave/ad_aggregator_id")
			if err != nil {
				return false, state, err
			}
			state += " aggregator " + agg
			ready = ready && active != "" && agg == active
			// LACP has converged on the port when both ends are in sync,
			// collecting and distributing.
			for _, end := range []string{"actor", "partner"} {
				v, err := read("/sys/class/net/" + sl + "/bonding_slave/ad_" + end + "_oper_port_state")
				if err != nil {
					return false, state, err
				}
				n, err := strconv.Atoi(v)
				if err != nil {
					return false, state, fmt.Errorf("%s %s port state %q: %w", sl, end, v, err)
				}
				state += fmt.Sprintf(" %s %#x", end, n)
				ready = ready && n&lacpInUse == lacpInUse
			}
		}
	}
	return ready, state, nil
}

// waitBonds waits until node's bond0 and the ToR's bond toward it are
// ready (see bondReady).
func waitBonds(t *testing.T, c *Cluster, node string) time.Duration {
	t.Helper()
	begin := time.Now()
	f := c.Fabric()
	i := slices.IndexFunc(c.Topology().Nodes, func(n *topologies.Node) bool { return n.Name == node })
	for _, side := range []struct {
		vm   *vmtest.VM
		bond string
	}{{f.VM(node), "bond0"}, {f.Router(), vmtest.TorBond(node, i)}} {
		for {
			ok, text, err := bondReady(ctx(t, 10*time.Second), side.vm, side.bond)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Since(begin) > 30*time.Second {
				t.Fatalf("%s: bond not whole 30 s after the cut: %s", side.vm.Name(), text)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Since(begin)
}

// TestFaults boots one cluster and hurts it in turn, with long-lived
// connections running through the Service: node-updates racing the
// traffic, BGP speaker restarts, a link-flap storm on the bond slaves, a
// full CT table, then a guest kernel panic and a killed QEMU.
func TestFaults(t *testing.T) {
	top := faultTopology(t, "faults")
	scaled := faultTopology(t, "faults-scaled")
	c := StartT(t, Spec{Topology: top, Series: os.Getenv("HOPLAB_SERIES"), ConvergeTimeout: convergeBound})
	httpOK(t, c)

	t.Run("node-update-under-load", func(t *testing.T) {
		before := drops(t, c)
		load := startStreams(c)
		var took []time.Duration
		for i := range updates {
			next := scaled
			if i%2 == 1 {
				next = top
			}
			begin := time.Now()
			if err := c.Update(ctx(t, 30*time.Second), next); err != nil {
				load.end(t, "node-update")
				t.Fatalf("update %d: %v", i+1, err)
			}
			took = append(took, time.Since(begin))
		}
		load.end(t, "node-update")
		t.Logf("%d updates (pod5, Services admin and local and a policy port added, then removed), each %s", updates, spread(took))
		if d := newDrops(before, drops(t, c)); len(d) > 0 {
			t.Errorf("packets dropped while node-updates raced the traffic: %s", strings.Join(d, ", "))
		}
		httpOK(t, c)
	})

	t.Run("bgp-restarts", func(t *testing.T) {
		// Both nodes' speakers restart at once, bgpRestarts/2 times: GoBGP
		// holds a dropped neighbour Idle for 5 s, so each round takes ~8 s.
		nodes := c.Topology().Nodes
		var down, up []time.Duration
		for round := range bgpRestarts / len(nodes) {
			for _, n := range nodes {
				if err := c.Client(n.Name).BGPStop(ctx(t, 10*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			var cidrs []string
			for _, n := range nodes {
				cidrs = append(cidrs, n.PodCIDR.String())
			}
			down = append(down, waitWithdrawn(t, c, cidrs...))
			for _, n := range nodes {
				if err := c.Client(n.Name).BGPStart(ctx(t, 10*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			begin := time.Now()
			if err := c.WaitConverged(ctx(t, convergeBound)); err != nil {
				t.Fatalf("round %d: %v", round+1, err)
			}
			up = append(up, time.Since(begin))
		}
		t.Logf("%d speaker restarts (%d rounds of every node at once): PodCIDRs withdrawn from the ToR in %s; reconverged in %s",
			bgpRestarts, len(up), spread(down), spread(up))
		httpOK(t, c)
	})

	t.Run("link-flap-storm", func(t *testing.T) {
		load := startStreams(c)
		var back []time.Duration
		for i := range flapCuts {
			node, j := c.Topology().Nodes[i%2].Name, (i/2)%vmtest.UplinkNICs
			if err := c.Fabric().SetLink(ctx(t, 10*time.Second), node, j, false); err != nil {
				load.end(t, "link-flap storm")
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if err := c.Fabric().SetLink(ctx(t, 10*time.Second), node, j, true); err != nil {
				load.end(t, "link-flap storm")
				t.Fatal(err)
			}
			back = append(back, waitBonds(t, c, node))
		}
		load.end(t, "link-flap storm")
		t.Logf("%d cuts (active-backup on node1, 802.3ad on node2); bonds whole again after %s", flapCuts, spread(back))
	})
	t.Run("ct-table-full", func(t *testing.T) {
		// SYNs from pod1 to addresses beyond the cluster (the ToR drops
		// them): each is a new flow with a CT entry on node1.
		const flood = roles.DefaultCTEntries + roles.DefaultCTEntries/8
		frames := synFlood(t, c.Topology(), flood)
		load := startStreams(c)
		begin := time.Now()
		for i := 0; i < len(frames); i += 4096 {
			chunk := frames[i:min(i+4096, len(frames))]
			if _, err := c.Client("node1").Inject(ctx(t, time.Minute), nodeapi.Inject{Pod: "pod1", Frames: chunk}); err != nil {
				load.end(t, "CT table full")
				t.Fatalf("flood frames %d..%d: %v", i, i+len(chunk)-1, err)
			}
		}
		sent := time.Since(begin)
		st, err := c.Client("node1").CTStats(ctx(t, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		load.end(t, "CT table full")
		t.Logf("%d SYNs to new flows in %v; node1's CT table holds %d of %d entries", flood, sent.Round(time.Millisecond), st.Entries, st.Capacity)
		if st.Capacity != roles.DefaultCTEntries || st.Entries < st.Capacity*9/10 {
			t.Errorf("the flood filled node1's CT table to %d of %d entries only", st.Entries, st.Capacity)
		}
		// A full table's dump (tens of MB in the guest's 256 MiB) must not
		// take the node down.
		begin = time.Now()
		rows, err := c.Client("node1").CTList(ctx(t, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("dumped %d CT rows in %v", len(rows), time.Since(begin).Round(time.Millisecond))
		if len(rows) < st.Entries*9/10 {
			t.Errorf("the dump has %d rows of %d entries", len(rows), st.Entries)
		}
		httpOK(t, c)
	})

	t.Run("guest-panic-and-killed-qemu", func(t *testing.T) {
		f := c.Fabric()
		node2 := f.VM("node2")
		if err := node2.Agent().Crash(ctx(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-node2.Exited():
		case <-time.After(60 * time.Second):
			t.Fatal("node2's QEMU still runs 60 s after its kernel was made to panic")
		}
		_, err := c.Client("node2").Metrics(ctx(t, 10*time.Second))
		t.Logf("a call to the panicked node2:\n%v", err)
		checkDeadNode(t, err, "node2", "qemu exited: guest kernel panic: sysrq triggered crash")

		node1 := f.VM("node1")
		if err := node1.Kill(); err != nil {
			t.Fatal(err)
		}
		<-node1.Exited()
		_, err = c.Run(ctx(t, 10*time.Second), nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80"})
		t.Logf("a client action on the killed node1:\n%v", err)
		checkDeadNode(t, err, "node1", "signal: killed")

		dir := f.Dir()
		if err := c.Close(); err != nil {
			t.Logf("close: %v", err)
		}
		console, err := os.ReadFile(filepath.Join(dir, "node2.console.log"))
		if err != nil {
			t.Fatalf("artifacts not kept after a node died: %v", err)
		}
		if !strings.Contains(string(console), "Kernel panic") {
			t.Errorf("node2's kept console log lacks the panic")
		}
		os.RemoveAll(dir)
	})
}

// checkDeadNode checks the error of a call to a node whose QEMU ended: it
// wraps vmtest.ErrExited, its first line names the node and says why
// (how QEMU ended, the panic's reason), and the console tail follows.
func checkDeadNode(t *testing.T, err error, node, why string) {
	t.Helper()
	if err == nil {
		t.Fatalf("a call to the dead %s succeeded", node)
	}
	first, rest, _ := strings.Cut(err.Error(), "\n")
	if !errors.Is(err, vmtest.ErrExited) || !strings.Contains(first, node) {
		t.Errorf("error's first line %q does not name %s, or the error does not wrap ErrExited", first, node)
	}
	if !strings.Contains(first, why) || !strings.Contains(rest, "console tail") {
		t.Errorf("error's first line %q lacks %q, or the error lacks the console tail", first, why)
	}
}

// synFlood builds n TCP SYNs from pod1 to distinct flows toward
// 10.128.0.0/9, beyond every PodCIDR, Service and node address.
func synFlood(t *testing.T, top *topologies.Topology, n int) [][]byte {
	t.Helper()
	p := top.Pod("pod1")
	eth := &layers.Ethernet{SrcMAC: p.MAC.HardwareAddr(), DstMAC: p.LXCMAC.HardwareAddr(), EthernetType: layers.EthernetTypeIPv4}
	out := make([][]byte, n)
	for i := range n {
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(i), Protocol: layers.IPProtocolTCP, SrcIP: p.IP.AsSlice(),
			DstIP: net.IP{10, 128 | byte(i>>16), byte(i >> 8), byte(i)}}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(10000 + i%50000), DstPort: 80, Seq: uint32(i), SYN: true, Window: 64240}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp); err != nil {
			t.Fatal(err)
		}
		out[i] = buf.Bytes()
	}
	return out
}

// spread describes durations as "min … median … max".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("%v … %v … %v (min, median, max)", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
