package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/tools/replayinput"
	"github.com/hoplab/hoplab/tools/replayreport"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// replayFlags are replay's options.
type replayFlags struct {
	topology, pcap, inject, kernel, out string
	// kernels replays on each of these kernels and compares the
	// journeys (replay --kernels); diff prints them side by side.
	kernels                           string
	diff                              bool
	json, timing, keepL2, skipRefused bool
	strict                            bool
	// keepOuter replays VXLAN-encapsulated packets as captured instead of
	// their inner packets.
	keepOuter bool
	// live lets injecting pods' kernels reset the injected flows (they
	// hold no socket for them); ackRewrite shifts a replayed client's
	// acknowledgement numbers to the live server's sequence space.
	live, ackRewrite bool
	// maxFlows sizes each injecting pod's RST filter (0: the default,
	// nodeapi.DefaultRSTFlows).
	maxFlows int
}

func newReplayCmd(a *app) *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay --topology T --pcap FILE [--inject POINT] [--kernel SERIES|PATH | --kernels A,B [--diff]] [--json] [--out DIR]",
		Short: "Replay a capture through a topology and show every packet's journey",
		Long: `Replay injects every packet of a pcap or pcapng capture into a running
topology, in order, and prints one journey per packet: each hop's node,
point, device, Ethernet/IP/L4 headers and verdict, with '*' on the fields
that changed since the previous hop; a drop names Cilium's reason, the hop
and the identities involved.

The capture is checked first; problems are reported in one line naming the
packet (index from 0, Wireshark's frame number in brackets). Linux cooked
captures (tcpdump -i any) and raw-IP captures are converted to Ethernet and
their MACs set at injection; VLAN tags are stripped; a packet tcpdump -i any
recorded on several interfaces is replayed once. VXLAN frames (a
tunnel-mode cluster's wire) are replayed by their inner packets, or as
captured with --keep-outer (entering at the router port facing the node of
their outer destination). Snaplen-cut packets, IPv6 and non-IP frames are
refused (--skip-refused skips them instead). See docs/replay.md.

A cluster started with 'hoplab vm up' is reused when it runs the same
topology on the same kernel; otherwise the topology is booted for this
command and torn down afterwards (also on Ctrl-C).

Without --inject each packet enters at the pod or external host owning its
source address, else at the router port facing the node owning its
destination, else at the router port facing the first node. POINT is a pod
(pod1), an external host behind the router (laptop: a NodePort's client), a
node's bond (node2:bond0) or the router's port facing a node (tor:node2). Ethernet
addresses are rewritten to what that point really sends unless --keep-l2.

A pod's kernel holds no socket for the flows injected in its name and would
answer a server's SYN-ACK with a RST: those RSTs are dropped on the pod's
eth0 for the replay's duration (--live keeps them). Each pod's filter holds
4096 TCP flows unless --max-flows says more; a capture with more flows from
one pod is refused before anything boots. --ack-rewrite also
shifts the acknowledgement numbers of a replayed TCP client to the live
server's sequence space (waiting for each SYN-ACK), so a captured handshake
and request play out against the real server.

--kernels 5.10,7.2 replays the capture on each kernel (in turn, or at the
same time on 4 cores or more) and compares every packet's journey with the
first kernel's: hops, fields, verdicts, drop reasons and CT entries. It
prints the differences and exits with status 1 when there are any (--json
gives them structured); --diff prints each differing packet's journeys
side by side, the first differing hop marked '>' and the differing fields
'!'; --out FILE.html (or DIR) writes the two paths drawn side by side. An
entry KERNEL@TOPOLOGY boots a topology of its own on that kernel
("6.1,6.1@variant.yaml": what a configuration change does to the capture).

--out DIR writes one pcapng per hop (NN-node-point-device.pcapng) and
report.html, a self-contained page with a figure of each packet's path.`,
		Example: `  hoplab replay --topology docs/examples/bug-report/topology.yaml --pcap docs/examples/bug-report/capture.pcap
  hoplab replay --topology policy --pcap fixtures/data/policy-denied-port.pcap --json
  hoplab replay --topology pod-to-service --pcap dump.pcapng --inject node2:bond0 --out /tmp/journey
  hoplab replay --topology pod-to-service --pcap fixtures/data/tcp-syn-vip.pcap --kernels 5.10,7.2 --diff --out /tmp/kernels.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.replay(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.topology, "topology", "", "topology file or shipped topology name (default: the running cluster's)")
	fl.StringVar(&f.pcap, "pcap", "", "capture to replay (pcap or pcapng, optionally gzipped)")
	fl.StringVar(&f.inject, "inject", "", "injection point: POD, EXTERNAL, NODE:bond0 or ROUTER:NODE (default: per packet)")
	fl.BoolVar(&f.diff, "diff", false, "with --kernels: print each differing packet's journeys side by side")
	fl.StringVar(&f.kernels, "kernels", "", "replay on each of these kernels (series, or images; ';' between kernels when an image has a modules directory; KERNEL@TOPOLOGY boots another topology on it) and compare every journey with the first kernel's: exit 1 when one differs")
	fl.StringVar(&f.kernel, "kernel", "", "kernel series (5.10, 6.1, 6.12, 7.2) or /path/to/bzImage[,modules-dir] (default: the topology's)")
	fl.BoolVar(&f.json, "json", false, "print the journey report as JSON (DESIGN.md contract)")
	fl.StringVar(&f.out, "out", "", "write per-hop pcapng files and report.html into this directory")
	fl.BoolVar(&f.timing, "timing", false, "keep the capture's gaps between packets")
	fl.BoolVar(&f.keepL2, "keep-l2", false, "inject frames with their Ethernet header unchanged")
	fl.BoolVar(&f.live, "live", false, "let injecting pods' kernels reset the replayed TCP flows")
	fl.BoolVar(&f.ackRewrite, "ack-rewrite", false, "shift replayed TCP clients' ack numbers to the live server's (after its SYN-ACK)")
	fl.BoolVar(&f.skipRefused, "skip-refused", false, "skip packets that cannot be replayed (IPv6, non-IP, snaplen-cut) instead of failing")
	fl.IntVar(&f.maxFlows, "max-flows", 0, fmt.Sprintf("TCP flows each injecting pod's RST filter holds (default %d)", nodeapi.DefaultRSTFlows))
	fl.BoolVar(&f.keepOuter, "keep-outer", false, "replay VXLAN-encapsulated packets as captured, outer headers included, instead of their inner packets")
	fl.BoolVar(&f.strict, "strict", false, "refuse packets that parse but are malformed (a wrong IPv4 header checksum) instead of replaying them as captured with a note")
	return cmd
}

// replayPlan is a checked capture ready to inject.
type replayPlan struct {
	top      *topologies.Topology
	sel      *replayinput.Selection
	frames   []cluster.Frame
	injected map[int][]byte // capture index → frame as read
	notes    []string
}

// planReplay does everything that needs no VM: topology, capture checks,
// gaps and injection points (cluster.Gaps and cluster.Plan, the planning
// the replay itself does). Its errors name the file and the packet.
func (a *app) planReplay(f replayFlags) (*replayPlan, error) {
	if f.pcap == "" {
		return nil, errors.New("replay: --pcap is required")
	}
	top, err := a.topology(f.topology)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if _, err := cluster.RSTFilterSize(f.maxFlows); err != nil {
		return nil, fmt.Errorf("replay: --max-flows: %w", err)
	}
	sel, err := replayinput.Load(f.pcap, replayinput.Options{KeepL2: f.keepL2, SkipRefused: f.skipRefused, Strict: f.strict, KeepOuter: f.keepOuter,
		Progress: a.readProgress(f.pcap)})
	if err != nil {
		return nil, err
	}
	p := &replayPlan{top: top, sel: sel, injected: make(map[int][]byte, len(sel.Packets)), frames: make([]cluster.Frame, 0, len(sel.Packets))}
	var point cluster.InjectPoint
	if f.inject != "" {
		if point, err = cluster.ParsePoint(top, f.inject); err != nil {
			return nil, fmt.Errorf("replay: --inject: %w", err)
		}
	}
	for _, s := range sel.Skipped {
		p.notes = append(p.notes, fmt.Sprintf("packet %d skipped: %s", s.Index, s.Reason))
	}
	p.notes = append(p.notes, sel.Notes...)
	times := make([]time.Time, len(sel.Packets))
	for i, pk := range sel.Packets {
		times[i] = pk.Timestamp
	}
	gaps := cluster.Gaps(times)
	for i, pk := range sel.Packets {
		p.frames = append(p.frames, cluster.Frame{Data: pk.Data, Point: point, Gap: gaps[i]})
		p.injected[pk.Index] = pk.Data
	}
	// The cluster's planning places the packets without --inject, as the
	// replay will.
	planned, err := cluster.Plan(top, p.frames, f.options(top))
	var perr *cluster.PlanError
	if errors.As(err, &perr) {
		return nil, fmt.Errorf("replay: %s: packet %d: %w", f.pcap, sel.Packets[perr.Index].Index, perr.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("replay: %s: %w", f.pcap, err)
	}
	// The per-run maps must hold the capture's flows: checked now, before
	// anything boots.
	limits, err := cluster.CheckLimits(top, planned, f.options(top))
	var fe *cluster.FlowLimitError
	if errors.As(err, &fe) {
		return nil, fmt.Errorf("%s: %w (--max-flows %d raises it)", f.pcap, err, fe.Flows)
	}
	if err != nil {
		return nil, fmt.Errorf("replay: %s: %w", f.pcap, err)
	}
	for _, n := range limits {
		p.notes = append(p.notes, f.pcap+": "+n)
	}
	for i, pl := range planned {
		p.frames[i].Point = pl.Point
		if pl.Fallback {
			p.notes = append(p.notes, fmt.Sprintf("packet %d: neither address belongs to the topology: injected at %s", sel.Packets[i].Index, pl.Point))
		}
	}
	return p, nil
}

// options are the replay options of the flags for topology top: packets
// the default point cannot place enter at the router port facing the first
// node (cluster.FallbackPoint).
func (f replayFlags) options(top *topologies.Topology) cluster.ReplayOptions {
	return cluster.ReplayOptions{KeepL2: f.keepL2, Timing: f.timing, Fallback: cluster.FallbackPoint(top),
		SuppressRST: !f.live, TCPAckRewrite: f.ackRewrite, MaxFlows: f.maxFlows}
}

func (a *app) replay(ctx context.Context, f replayFlags) error {
	if f.diff && f.kernels == "" {
		return errors.New("replay: --diff compares kernels: give --kernels A,B")
	}
	if f.kernels != "" {
		if f.kernel != "" {
			return errors.New("replay: --kernel or --kernels, not both")
		}
		list, err := verifierKernels(f.kernels)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		return a.replayKernels(ctx, f, list)
	}
	log := a.logger()
	p, err := a.planReplay(f)
	if err != nil {
		return err
	}
	for _, n := range p.notes {
		log.Info(n)
	}
	h, release, err := a.cluster(ctx, p.top, parseKernel(f.kernel))
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer release()

	// Collect the frames every hop saw, for the per-hop captures.
	var mu sync.Mutex
	var sightings []replayreport.Sighting
	notKept := 0
	if f.out != "" {
		stop, err := h.SubscribeContext(ctx, func(e cluster.Event) {
			s := sightingsOf(e)
			mu.Lock()
			if room := maxOutSightings - len(sightings); len(s) > room {
				notKept += len(s) - max(room, 0)
				s = s[:max(room, 0)]
			}
			sightings = append(sightings, s...)
			mu.Unlock()
		})
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer stop()
	}
	start := time.Now()
	opts := f.options(p.top)
	progress, done := a.injectProgress(len(p.frames))
	opts.Progress = progress
	rep, err := h.Replay(ctx, p.frames, opts)
	done()
	if err != nil {
		return err // "replay: packet 3 at pod1: node1: pod-inject: ..."
	}
	log.Debug("replayed", "packets", len(p.frames), "took", time.Since(start).Round(time.Millisecond))
	p.captureIndexes(rep)
	if f.out != "" {
		mu.Lock()
		s := append([]replayreport.Sighting(nil), sightings...)
		over := notKept
		mu.Unlock()
		if over > 0 {
			log.Warn("per-hop captures hold the first sightings only: the later packets' frames are missing from them", "kept", len(s), "not_kept", over)
		}
		if err := writeOut(f.out, f.pcap, rep, p, s); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		log.Info("report written", "html", filepath.Join(f.out, "report.html"))
	}
	if f.json {
		return writeJSON(a.stdout, rep)
	}
	return replayreport.WriteText(a.stdout, rep, p.top)
}

// replayOn replays the planned capture on a cluster of kernel k (booted for
// it, or a running one that matches) and returns the journeys, indexed by
// the packets' places in the capture.
func (a *app) replayOn(ctx context.Context, f replayFlags, p *replayPlan, k string) (journey.Report, error) {
	h, release, err := a.cluster(ctx, p.top, parseKernel(k))
	if err != nil {
		return journey.Report{}, err
	}
	defer release()
	rep, err := h.Replay(ctx, p.frames, f.options(p.top))
	if err != nil {
		return journey.Report{}, err
	}
	p.captureIndexes(rep)
	return rep, nil
}

// captureIndexes gives the journeys of rep the packets' indexes in the
// capture (skipped packets leave gaps).
func (p *replayPlan) captureIndexes(rep journey.Report) {
	for i := range rep.Packets {
		if i < len(p.sel.Packets) {
			rep.Packets[i].Index = p.sel.Packets[i].Index
		}
	}
}

// sightingsOf turns a cluster event into the frames it shows at each hop.
func sightingsOf(e cluster.Event) []replayreport.Sighting {
	var frame []byte
	orig := 0
	switch {
	case e.Datapath != nil:
		frame, orig = e.Datapath.Frame, int(e.Datapath.OrigLen)
	case e.Pod != nil:
		frame = e.Pod.Frame
	case e.Wire != nil:
		frame = e.Wire.Frame
	}
	var out []replayreport.Sighting
	for _, o := range e.Observations() {
		out = append(out, replayreport.Sighting{Hop: o.Hop, Time: o.Time, Frame: frame, OrigLen: orig})
	}
	return out
}

// writeOut writes the per-hop captures and report.html into dir.
func writeOut(dir, pcap string, rep journey.Report, p *replayPlan, s []replayreport.Sighting) error {
	files, err := replayreport.WritePcaps(dir, rep, replayreport.Frames(rep, p.injected, s, time.Now()))
	if err != nil {
		return err
	}
	var b bytes.Buffer
	err = replayreport.WriteHTML(&b, rep, replayreport.HTMLOptions{Capture: filepath.Base(pcap), Topology: p.top, Files: files, Notes: p.notes})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.html"), b.Bytes(), 0o644)
}
