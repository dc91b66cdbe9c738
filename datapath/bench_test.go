package datapath

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/perf"
)

// benchCase is one row of the from-container benchmark table.
type benchCase struct {
	state  string // "NEW" or "ESTABLISHED"
	policy int    // policy entries of pod1 (0: policy not enforced)
	ct     int    // unrelated CT entries in the table
}

// BenchmarkFromContainer measures from-container per packet for a TCP
// flow from pod1 to Service 10.224.1.1:80 (backend on another node) with
// 0, 1, 100 and 10,000 egress policy entries and 0 or 100,000 CT entries,
// and logs a table with the ratio to the 0-entry case of the same state.
//
// ESTABLISHED: the flow's service and egress CT entries exist; the kernel
// runs the same packet 20,000 times per BPF_PROG_TEST_RUN and reports the
// mean; the median of at least 21 such batches is reported. NEW: every run
// is a SYN of a different flow (its own source port), run once (repeat 1),
// so each does backend selection, policy and CT creation; the median over
// b.N runs is reported. A single run's kernel-measured time includes the
// test-run timer (about 50 ns more than amortized; BenchmarkBaseline is
// the amortized empty program). With policy entries, pod1 enforces egress and the
// flow matches an L3L4 entry; the other entries are for other identities.
//
// By default no event reader is open, so the programs mute their
// notifications; HOPLAB_BENCH_READER=1 opens a batch reader (and drains
// it), and
// HOPLAB_BENCH_AGGREGATION=medium sets Cilium's default monitor
// aggregation.
func BenchmarkFromContainer(b *testing.B) {
	results := map[benchCase]time.Duration{}
	for _, ctEntries := range []int{0, 100000} {
		dp := loadDatapath(b)
		if os.Getenv("HOPLAB_BENCH_AGGREGATION") == "medium" {
			must(b, dp.SetMonitorAggregation(AggregationMedium))
		}
		if os.Getenv("HOPLAB_BENCH_READER") != "" {
			r, err := dp.NewBatchEventReader(1 << 20)
			must(b, err)
			go func() {
				for {
					if _, err := r.Read(); errors.Is(err, perf.ErrClosed) {
						return
					}
				}
			}()
			defer r.Close()
		}
		must(b, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
		fillCT(b, dp, ctEntries)
		installed := 0
		for _, policies := range []int{0, 1, 100, 10000} {
			addEndpoint(b, dp, pod1, false, policies > 0)
			if policies > 0 && installed == 0 {
				must(b, dp.Policy.Allow(L3L4Key(pod1.id, Egress, pod4ID, 8080, ProtoTCP)))
				installed = 1
			}
			for ; installed < policies; installed++ {
				must(b, dp.Policy.Allow(L3L4Key(pod1.id, Egress, Identity(100000+installed), 8080, ProtoTCP)))
			}
			for _, state := range []string{"NEW", "ESTABLISHED"} {
				c := benchCase{state: state, policy: policies, ct: ctEntries}
				b.Run(fmt.Sprintf("%s/policy=%d/ct=%d", state, policies, ctEntries), func(b *testing.B) {
					results[c] = benchFromContainer(b, dp, state == "NEW", tcActOK)
				})
			}
		}
	}
	if len(results) > 0 {
		fmt.Println(benchTable(results))
	}
}

// benchFromContainer runs the service flow, which from-container must
// answer with verdict want, and returns ns per packet.
func benchFromContainer(b *testing.B, dp *Datapath, isNew bool, want uint32) time.Duration {
	in := fromPod(pod1, vip, 80)
	in.syn, in.ack = false, true
	data := in.bytes(b)
	var samples []time.Duration
	if isNew {
		// Every run is a different flow (its own source port), so each
		// one selects a backend and creates its service and egress CT
		// entries; they are removed again after every 60,000 flows and at
		// the end, leaving the seeded entries alone.
		const flows = 60000
		pkts := make([][]byte, min(b.N, flows))
		for i := range pkts {
			p := in
			p.syn, p.ack, p.sport = true, false, uint16(2000+i)
			pkts[i] = p.bytes(b)
		}
		forget := func() {
			for i := range pkts {
				sport := uint16(2000 + i)
				_ = dp.CT.Delete(CTKey{Src: ap(pod1.addr(), sport), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService})
				_ = dp.CT.Delete(CTKey{Src: ap(pod1.addr(), sport), Dst: ap(pod4IP, 8080), Proto: ProtoTCP, Flags: TupleOut})
			}
		}
		defer forget()
		for i := range b.N {
			if i > 0 && i%flows == 0 {
				forget()
			}
			ret, d, err := dp.FromContainer.Benchmark(pkts[i%flows], 1, nil)
			if err != nil || ret != want {
				b.Fatalf("run: %d, %v", ret, err)
			}
			samples = append(samples, d)
		}
	} else {
		if ret, _, err := dp.FromContainer.Benchmark(data, 1, nil); err != nil || ret != want {
			b.Fatalf("warm-up: %d, %v", ret, err)
		}
		// At least 21 batches of 20,000 packets whatever b.N is: short
		// batches are dominated by the noise of a shared machine.
		batches := max(21, b.N/20000)
		for range batches {
			ret, d, err := dp.FromContainer.Benchmark(data, 20000, nil)
			if err != nil || ret != want {
				b.Fatalf("run: %d, %v", ret, err)
			}
			samples = append(samples, d)
		}
	}
	// The median resists the preemptions of a shared machine.
	slices.Sort(samples)
	per := samples[len(samples)/2]
	b.ReportMetric(float64(per.Nanoseconds()), "ns/pkt")
	return per
}

// BenchmarkTunnelEstablished compares, for the ESTABLISHED service flow
// of BenchmarkFromContainer (no policy, no other CT entries), from-container
// in direct routing (to the stack) with tunnel mode (the ipcache lookup of
// the tunnel endpoint, the tunnel key, the to-overlay trace and the
// redirect to the VXLAN device), on one datapath, and prints the ratio.
// Both run behind restoreHarness (BenchmarkNodePortEstablished): without
// it every run after the first would see the packet already DNATed and
// skip the service path. The harness's own cost is subtracted.
func BenchmarkTunnelEstablished(b *testing.B) {
	dp := loadDatapath(b)
	must(b, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	must(b, dp.IPCache.Upsert(pfx("10.1.2.0/24"), IPCacheEntry{Identity: pod4ID, TunnelEndpoint: node2IP}))
	p := fromPod(pod1, vip, 80)
	// The SYN creates the flow's service and egress entries.
	if res := run(b, dp.FromContainer, p.bytes(b), nil); res.ret != tcActOK {
		b.Fatalf("set-up run: verdict %d", res.ret)
	}
	p.syn, p.ack = false, true
	data := p.bytes(b)
	empty, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	must(b, err)
	defer empty.Close()
	var harness, direct, tunnel time.Duration
	b.Run("harness", func(b *testing.B) { harness = benchRestoredWant(b, empty, data, tcActOK) })
	b.Run("direct-routing", func(b *testing.B) {
		must(b, dp.SetTunnelDevice(0))
		direct = benchRestoredWant(b, dp.FromContainer, data, tcActOK)
	})
	b.Run("tunnel", func(b *testing.B) {
		must(b, dp.SetTunnelDevice(tunnelIfIndex))
		tunnel = benchRestoredWant(b, dp.FromContainer, data, tcActRedirect)
	})
	if harness > 0 && direct > harness && tunnel > harness {
		d, t := direct-harness, tunnel-harness
		fmt.Printf("ESTABLISHED from-container (harness %d ns subtracted): direct routing %d ns/pkt, tunnel %d ns/pkt, ratio %.2f\n",
			harness.Nanoseconds(), d.Nanoseconds(), t.Nanoseconds(), float64(t)/float64(d))
	}
}

// fillCT adds n unrelated TCP entries.
func fillCT(b *testing.B, dp *Datapath, n int) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range n {
		e := CTEntry{
			Key: CTKey{
				Src:   ap(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), uint16(1024+rng.IntN(60000))),
				Dst:   ap(netip.AddrFrom4([4]byte{10, 8, byte(rng.IntN(256)), byte(rng.IntN(256))}), 80),
				Proto: ProtoTCP,
			},
			Lifetime: ^uint32(0), TxPackets: 1,
		}
		must(b, dp.CT.Put(e))
	}
}

// benchTable renders the results with ratios to the 0-entry case.
func benchTable(r map[benchCase]time.Duration) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-12s %8s %8s %10s %8s\n", "state", "policy", "ct", "ns/pkt", "ratio")
	for _, state := range []string{"NEW", "ESTABLISHED"} {
		base := r[benchCase{state: state}]
		for _, ct := range []int{0, 100000} {
			for _, p := range []int{0, 1, 100, 10000} {
				d, ok := r[benchCase{state, p, ct}]
				if !ok || base == 0 {
					continue
				}
				fmt.Fprintf(&sb, "%-12s %8d %8d %10d %8.2f\n", state, p, ct, d.Nanoseconds(), float64(d)/float64(base))
			}
		}
	}
	return sb.String()
}

// BenchmarkBaseline is a SchedCLS program that only returns TC_ACT_OK: the
// fixed cost of BPF_PROG_TEST_RUN per packet on this machine, for reading
// the from-container numbers.
func BenchmarkBaseline(b *testing.B) {
	loadDatapath(b)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	must(b, err)
	defer prog.Close()
	_, d, err := prog.Benchmark(fromPod(pod1, vip, 80).bytes(b), b.N, nil)
	must(b, err)
	b.ReportMetric(float64(d.Nanoseconds()), "ns/pkt")
}

// BenchmarkNodePortEstablished measures an established NodePort
// connection to a remote backend (nodeport_test.go's client →
// node1:30080 → pod4:8080) at each program that translates it, next to
// the established direct-routing service flow of BenchmarkFromContainer
// (pod1 → 10.224.1.1:80 → pod4:8080, from-container), on one datapath,
// and prints each one's ratio to the latter:
//
//   - request from-netdev: the client's ACK, DNAT (service entry, CT)
//   - request to-netdev: the forwarded ACK, SNAT (NAT egress entry)
//   - reply from-netdev: pod4's ACK to node1's NAT port, reverse SNAT
//   - reply to-netdev: the forwarded reply, reverse DNAT (CT entry)
//
// A repeated BPF_PROG_TEST_RUN hands every run the packet as the previous
// run left it: after the first run it is translated and takes another
// path. So each program runs behind restoreHarness, which writes the
// packet's headers back before tail-calling it; the harness tail-calling
// an empty program is measured the same way and subtracted. Batches of
// 20,000 runs, the median of at least 21 batches, as in
// BenchmarkFromContainer.
func BenchmarkNodePortEstablished(b *testing.B) {
	dp := loadDatapath(b)
	must(b, dp.SetNodeAddress(node1IP))
	must(b, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080})))
	must(b, dp.Services.Upsert(nodePortService(Backend{ID: 4, Addr: pod4IP, Port: backendPort})))

	direct := fromPod(pod1, vip, 80)
	direct.syn, direct.ack = false, true
	req := fromClient()
	req.syn, req.ack = false, true
	reqFwd := forwarded(req)
	reqFwd.dst, reqFwd.dport = pod4IP, backendPort
	rep := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: node1IP, ttl: 62,
		proto: ProtoTCP, sport: backendPort, dport: clientPort, ack: true, payload: []byte("hello")}
	repFwd := forwarded(rep)
	repFwd.dst = clientIP
	// The connection's first packets create its entries: the service,
	// egress and NodePort CT entries and the NAT entries (port 40000).
	for _, c := range []struct {
		prog *ebpf.Program
		p    pkt
	}{{dp.FromContainer, direct}, {dp.FromNetdev, req}, {dp.ToNetdev, reqFwd}} {
		if res := run(b, c.prog, c.p.bytes(b), nil); res.ret != tcActOK {
			b.Fatalf("set-up run: verdict %d", res.ret)
		}
	}

	empty, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	must(b, err)
	defer empty.Close()
	cases := []struct {
		name string
		prog *ebpf.Program
		p    pkt
	}{
		{"harness (empty program)", empty, direct},
		{"direct-routing/from-container", dp.FromContainer, direct},
		{"nodeport/request/from-netdev", dp.FromNetdev, req},
		{"nodeport/request/to-netdev", dp.ToNetdev, reqFwd},
		{"nodeport/reply/from-netdev", dp.FromNetdev, rep},
		{"nodeport/reply/to-netdev", dp.ToNetdev, repFwd},
	}
	results := make([]time.Duration, len(cases))
	for i, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			results[i] = benchRestored(b, c.prog, c.p.bytes(b))
		})
	}
	if results[0] == 0 || results[1] <= results[0] {
		return
	}
	// Every run took the translating path: the connection's CT entry
	// counted each request (from-netdev) and each reply (to-netdev).
	np, err := dp.CT.Lookup(CTKey{Src: ap(clientIP, clientPort), Dst: ap(pod4IP, backendPort), Proto: ProtoTCP, Flags: TupleOut})
	must(b, err)
	if np.TxPackets < 21*20000 || np.RxPackets < 21*20000 {
		b.Fatalf("NodePort entry %v: the harness did not restore the packets", np)
	}
	net := func(i int) time.Duration { return results[i] - results[0] }
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-40s %8s %8s\n", "ESTABLISHED (harness subtracted)", "ns/pkt", "ratio")
	for i := 1; i < len(cases); i++ {
		if results[i] > 0 {
			fmt.Fprintf(&sb, "%-40s %8d %8.2f\n", cases[i].name, net(i).Nanoseconds(), float64(net(i))/float64(net(1)))
		}
	}
	if results[2] > 0 && results[3] > 0 {
		both := net(2) + net(3)
		fmt.Fprintf(&sb, "%-40s %8d %8.2f\n", "nodeport/request, both programs", both.Nanoseconds(), float64(both)/float64(net(1)))
	}
	fmt.Fprintf(&sb, "%-40s %8d\n", "harness (restore + tail call)", results[0].Nanoseconds())
	fmt.Print(sb.String())
}

// restoreLen is how many bytes restoreHarness writes back: the Ethernet,
// IPv4 and TCP headers (no options) of the benchmark packets, all a
// translation changes.
const restoreLen = 14 + 20 + 20

// restoreHarness returns a program that writes the first restoreLen bytes
// of data into the packet and tail-calls target (TC_ACT_SHOT if the tail
// call fails).
func restoreHarness(b *testing.B, target *ebpf.Program, data []byte) *ebpf.Program {
	b.Helper()
	hdr, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 64, MaxEntries: 1})
	must(b, err)
	b.Cleanup(func() { hdr.Close() })
	var v [64]byte
	copy(v[:], data[:restoreLen])
	must(b, hdr.Put(uint32(0), v))
	calls, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	must(b, err)
	b.Cleanup(func() { calls.Close() })
	must(b, calls.Put(uint32(0), target))
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.Mov.Imm(asm.R2, 0),
			asm.StoreMem(asm.RFP, -4, asm.R2, asm.Word),
			asm.LoadMapPtr(asm.R1, hdr.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, 0),
			asm.Mov.Reg(asm.R3, asm.R0),
			asm.Mov.Imm(asm.R4, restoreLen),
			asm.Mov.Imm(asm.R5, 0),
			asm.FnSkbStoreBytes.Call(),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.LoadMapPtr(asm.R2, calls.FD()),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnTailCall.Call(),
			asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("out"),
			asm.Return(),
		},
	})
	must(b, err)
	b.Cleanup(func() { prog.Close() })
	return prog
}

// benchRestored runs prog behind restoreHarness on data, every run
// requiring TC_ACT_OK, and returns the median time per packet of batches
// of 20,000 runs (at least 21 batches).
func benchRestored(b *testing.B, prog *ebpf.Program, data []byte) time.Duration {
	return benchRestoredWant(b, prog, data, tcActOK)
}

// benchRestoredWant is benchRestored requiring verdict want.
func benchRestoredWant(b *testing.B, prog *ebpf.Program, data []byte, want uint32) time.Duration {
	h := restoreHarness(b, prog, data)
	var samples []time.Duration
	for range max(21, b.N/20000) {
		ret, d, err := h.Benchmark(data, 20000, nil)
		if err != nil || ret != want {
			b.Fatalf("run: %d, %v", ret, err)
		}
		samples = append(samples, d)
	}
	slices.Sort(samples)
	per := samples[len(samples)/2]
	b.ReportMetric(float64(per.Nanoseconds()), "ns/pkt")
	return per
}
