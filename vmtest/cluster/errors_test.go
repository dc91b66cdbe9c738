package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/agent"
	_ "github.com/hoplab/hoplab/vmtest/agent/roles" // the node and router methods on agent.Default
	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Each layer of a cluster's call chain names what it adds once: the
// cluster its name, the client the VM and the method, the guest's role
// the step, the replay the packets. These tests run the chains without
// VMs: the agents are the guest's (package roles on agent.Default) or
// stand-ins, served over pipes.

// agentClients returns clients for the topology's router and nodes, each
// over a pipe to a agent a.
func agentClients(t *testing.T, a *agent.Agent, top *topologies.Topology) map[string]*nodeapi.Client {
	t.Helper()
	out := map[string]*nodeapi.Client{}
	for _, name := range append([]string{top.Router.Name}, nodeNames(top)...) {
		host, guest := net.Pipe()
		go a.Serve(context.Background(), control.NewConn(guest, guest))
		cl := control.NewClient(host)
		t.Cleanup(func() { cl.Close(); guest.Close() })
		out[name] = nodeapi.NewControlClient(name, cl)
	}
	return out
}

// A node whose setup fails is named once, by its client, with the method;
// the guest names the step. (A topology text the guest cannot parse fails
// in roles.Setup before it touches the network.)
func TestSetupErrorNamesNodeAndMethodOnce(t *testing.T) {
	top := builtin(t, "pod-to-service")
	c := &Cluster{top: top, log: slog.New(slog.DiscardHandler), clients: agentClients(t, agent.Default, top)}
	err := c.setup(context.Background(), "name: [", true)
	errtext.Check(t, err, "node1: node-setup: topologies/pod-to-service.yaml:2:1: did not find expected node content\n"+
		"node2: node-setup: topologies/pod-to-service.yaml:2:1: did not find expected node content")
}

// A replay that cannot plan a frame names the packet once, locally and
// through the cluster socket alike.
func TestTraceErrorNamesThePacketOnce(t *testing.T) {
	top := builtin(t, "pod-to-service")
	frames := []Frame{{Data: frameOf(t, "10.1.1.10", "10.224.1.1", "tcp", 40000, 80, 64)},
		{Data: frameOf(t, "192.0.2.7", "198.51.100.1", "tcp", 1, 2, 64)}}
	const want = "replay: packet 1: bad injection point: neither 192.0.2.7 is a pod's nor 198.51.100.1 a node's address; name the point"
	c := &Cluster{top: top, log: slog.New(slog.DiscardHandler), clients: agentClients(t, agent.Default, top)}
	_, err := c.Trace(context.Background(), frames, ReplayOptions{})
	errtext.Check(t, err, want)
	_, err = c.Trace(context.Background(), nil, ReplayOptions{})
	errtext.Check(t, err, "replay: no frames")

	r := serveForTest(t, c)
	_, err = r.Trace(context.Background(), frames, ReplayOptions{})
	errtext.Check(t, err, want)
	// A node's error passes the socket as the node's client said it.
	err = r.Reset(context.Background())
	errtext.Check(t, err, "node1: node-reset: not set up: call node-setup (or router-setup) first\n"+
		"node2: node-reset: not set up: call node-setup (or router-setup) first")
	_, err = r.Run(context.Background(), nodeapi.ClientAction{Pod: "pod9"})
	errtext.Check(t, err, `cluster run: unknown pod: "pod9"`)
}

// serveForTest serves c's cluster socket (Cluster.Serve without a fabric)
// and attaches a Remote to it.
func serveForTest(t *testing.T, c *Cluster) *Remote {
	t.Helper()
	sock := filepath.Join(t.TempDir(), SocketName)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{c: c, ln: ln, path: sock, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() { s.close() })
	r := &Remote{state: &State{Socket: sock}, top: c.top, clients: map[string]*nodeapi.Client{}}
	t.Cleanup(func() { r.Close() })
	return r
}

// An injection that fails names the packets and the point (the cluster),
// the node and the method (the client) and the frame of the request (the
// guest) once each.
func TestInjectErrorNamesPacketsPointAndNodeOnce(t *testing.T) {
	top := builtin(t, "pod-to-service")
	a := agent.NewAgent(slog.New(slog.DiscardHandler))
	a.Handle(nodeapi.MethodInject, agent.Typed(func(_ context.Context, req nodeapi.Inject) (nodeapi.Injected, error) {
		// What roles.Node.Inject says when the pod's socket refuses a frame.
		return nodeapi.Injected{}, fmt.Errorf("frame %d: send: %w", len(req.Frames)-1, unix.ENOBUFS)
	}))
	c := &Cluster{top: top, log: slog.New(slog.DiscardHandler), clients: agentClients(t, a, top)}
	syn := frameOf(t, "10.1.1.10", "10.224.1.1", "tcp", 40000, 80, 64)
	plan, err := Plan(top, []Frame{{Data: syn}, {Data: syn}, {Data: syn}}, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.inject(ctx, plan, nil, ReplayOptions{})
	errtext.Check(t, err, "packets 0..2 at pod1: node1: pod-inject: frame 2: send: no buffer space available")
	_, err = c.inject(ctx, plan[2:], nil, ReplayOptions{})
	errtext.Check(t, err, "packet 2 at pod1: node1: pod-inject: frame 0: send: no buffer space available")
}

// Start names the cluster once; PrepareBoot names its operation.
func TestStartErrorNamesTheClusterOnce(t *testing.T) {
	image := filepath.Join(t.TempDir(), "bzImage")
	t.Setenv("HOPLAB_KERNEL", image)
	_, err := Start(context.Background(), Spec{Topology: builtin(t, "pod-to-service")})
	errtext.Check(t, err, "cluster pod-to-service: prepare boot: HOPLAB_KERNEL: user kernel: open "+image+": no such file or directory")

	t.Setenv("HOPLAB_KERNEL", "")
	_, err = Start(context.Background(), Spec{Topology: builtin(t, "pod-to-service"), Series: "0.1"})
	if want := "cluster pod-to-service: prepare boot: unknown kernel 0.1/cloud (catalogue: "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("unknown kernel series: %v, want %q...", err, want)
	}
	if err != nil && errtext.Repeated(err.Error()) != "" {
		t.Errorf("%v repeats %q", err, errtext.Repeated(err.Error()))
	}
}

// TestStartRefusesAnUnknownTopologyKernelWhereItIsNamed: a topology naming
// a kernel the catalogue lacks fails before anything boots, naming the
// topology's file:line:col.
func TestStartRefusesAnUnknownTopologyKernelWhereItIsNamed(t *testing.T) {
	t.Setenv("HOPLAB_KERNEL", "")
	top, err := topologies.Parse("odd.yaml", []byte(`name: odd
kernel: "9.99"
router: {name: tor, asn: 65000}
nodes:
  - name: node1
    asn: 65001
    podCIDR: 10.1.1.0/24
    uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1}
pods:
  - {name: pod1, node: node1, ip: 10.1.1.10, labels: {app: a}}
`))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Start(context.Background(), Spec{Topology: top})
	want := `odd.yaml:2:9: kernel: unknown kernel 9.99/cloud (catalogue: `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want %q...", err, want)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the refusal took %v: something booted first", took)
	}
}
