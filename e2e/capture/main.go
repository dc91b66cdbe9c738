// Command capture records the fixture fixtures/data/captured-http-get.pcap
// from real traffic through the datapath, and its expectation
// captured-http-get.json from the journeys the captured packets take when
// they are replayed:
//
//	go run ./e2e/capture [-out fixtures/data]
//
// It boots the pod-to-service topology, runs an HTTP GET from pod1 to
// Service 10.224.1.1:80 (answered by pod4), keeps every frame of that
// connection pod1's eth0 sent (the cluster's pod observations), writes them
// as a classic pcap, then replays the pcap at pod1 on the flushed cluster and
// writes the observed journeys as the expectation (CT flags left as
// wildcards: they depend on timing). The pair is then frozen: committed and
// compared hop by hop by the pod-to-service suite, like every fixture.
// Running the command again captures a new connection (new ports, sequence
// numbers and IP IDs) and rewrites both files.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Name is the fixture's name.
const Name = "captured-http-get"

const (
	topology = "pod-to-service"
	client   = "pod1"
	service  = "10.224.1.1:80"
)

func main() {
	out := flag.String("out", "fixtures/data", "directory to write "+Name+".pcap and .json to")
	flag.Parse()
	vmtest.HandleSignals()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := capture(ctx, *out); err != nil {
		log.Fatal(err)
	}
}

func capture(ctx context.Context, out string) error {
	top, err := topologies.Builtin(topology)
	if err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Spec{Topology: top, ConsoleLine: func(string, string) {}})
	if err != nil {
		return err
	}
	defer c.Close()

	frames, err := record(ctx, c)
	if err != nil {
		return err
	}
	var pcap bytes.Buffer
	if err := writePcap(&pcap, frames); err != nil {
		return err
	}
	// Replay what was captured on a flushed cluster: the journeys are the
	// expectation.
	if err := c.Reset(ctx); err != nil {
		return err
	}
	point, err := cluster.ParsePoint(top, client)
	if err != nil {
		return err
	}
	var replay []cluster.Frame
	for _, f := range frames {
		replay = append(replay, cluster.Frame{Data: f.data, Point: point})
	}
	rep, err := c.Replay(ctx, replay, cluster.ReplayOptions{})
	if err != nil {
		return fmt.Errorf("replay the capture: %w", err)
	}
	exp := expectation(rep)
	js, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		return err
	}
	// Check the expectation reads back as a fixture does.
	if _, err := fixtures.ParseExpectation(Name+".json", js); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, Name+".pcap"), pcap.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, Name+".json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	slog.Info("fixture written", "pcap", filepath.Join(out, Name+".pcap"), "packets", len(frames), "kernel", c.Kernel())
	fmt.Print(journey.RenderPacket(rep.Packets[0]))
	return nil
}

type frame struct {
	t    time.Time
	data []byte
}

// record runs the HTTP GET and returns the frames of its connection that
// pod1's eth0 sent.
func record(ctx context.Context, c *cluster.Cluster) ([]frame, error) {
	var (
		mu  sync.Mutex
		all []nodeapi.PodPacket
	)
	stop, err := c.SubscribeContext(ctx, func(e cluster.Event) {
		if e.Kind == cluster.EventPod && e.Pod != nil && e.Pod.Pod == client && e.Pod.Direction == nodeapi.PodEgress {
			mu.Lock()
			all = append(all, *e.Pod)
			mu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	res, err := c.Run(ctx, nodeapi.ClientAction{Pod: client, Kind: nodeapi.ClientHTTP, Dst: service})
	if err != nil {
		stop()
		return nil, err
	}
	if len(res.Outcomes) != 1 || !res.Outcomes[0].OK {
		stop()
		return nil, fmt.Errorf("HTTP GET %s from %s: %+v", service, client, res.Outcomes)
	}
	local, err := netip.ParseAddrPort(res.Outcomes[0].Local)
	if err != nil {
		stop()
		return nil, fmt.Errorf("client address: %w", err)
	}
	// Let the connection's last frames (FIN, ACK) arrive.
	time.Sleep(time.Second)
	stop()
	mu.Lock()
	defer mu.Unlock()
	svc := netip.MustParseAddrPort(service)
	var frames []frame
	for _, p := range all {
		k, ok := journey.KeyFromFrame(p.Frame)
		if ok && k.Src == local && k.Dst == svc {
			frames = append(frames, frame{t: p.Time, data: p.Frame})
		}
	}
	if len(frames) < 4 {
		return nil, fmt.Errorf("captured %d frames of %s -> %s, want the whole connection", len(frames), local, svc)
	}
	return frames, nil
}

func writePcap(w *bytes.Buffer, frames []frame) error {
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: f.t.UTC(), CaptureLength: len(f.data), Length: len(f.data)}
		if err := pw.WritePacket(ci, f.data); err != nil {
			return err
		}
	}
	return nil
}

// expectation turns the observed journeys into the fixture's expectation.
func expectation(rep journey.Report) fixtures.Expectation {
	c := fixtures.Case{Topology: topology, Inject: client}
	for _, p := range rep.Packets {
		for i := range p.CT {
			p.CT[i].Flags = "" // timing-dependent: not asserted
		}
		c.Packets = append(c.Packets, p)
	}
	return fixtures.Expectation{
		Fixture: Name,
		Description: "A real HTTP GET from pod1 to Service 10.224.1.1:80, as pod1's eth0 sent it (captured by `go run ./e2e/capture` " +
			"from traffic through the datapath on kernel " + rep.Kernel + "), replayed: every packet is DNATed to pod4:8080 at node1's from-container " +
			"and crosses the fabric to pod4.",
		Pcap: Name + ".pcap",
		Assumptions: []string{
			"Captured, not generated: `make fixtures` leaves this pair alone; `go run ./e2e/capture` records a new one.",
			"The expected journeys are those the replay of the capture took when it was frozen (every field as observed), except CT flags, which depend on timing.",
			"Packets after the SYN carry the captured connection's acknowledgement numbers; pod4's socket rejects them, but every packet still crosses the datapath and reaches pod4's eth0.",
		},
		Requires: []string{},
		Cases:    []fixtures.Case{c},
	}
}
