package roles

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/agent"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// A node-setup that fails reads, through the host's client, as the node,
// the method and the step Setup names, once each: the client names
// "node1" and "node-setup", Setup the step ("load bpf_lxc spec", "pod
// pod1"), the datapath or the pod what went wrong.
func TestSetupErrorThroughClientNamesNodeMethodAndStepOnce(t *testing.T) {
	testreq.Root(t)
	text := topologyText(t, "pod-to-service")
	top, err := topologies.Parse("pod-to-service.yaml", []byte(text))
	must(t, err)
	ns := nodeNamespace(t, top, "node1")
	opts := Options{NetNSPrefix: netnstest.Prefix("err"), CTEntries: 4096, Logger: slog.New(slog.DiscardHandler)}

	a := agent.NewAgent(slog.New(slog.DiscardHandler))
	a.Handle(nodeapi.MethodSetup, agent.Typed(func(ctx context.Context, s nodeapi.Setup) (nodeapi.SetupResult, error) {
		// The agent runs in its VM's namespace; here that is the test's.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nodeapi.SetupResult{}, err
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			return nodeapi.SetupResult{}, err
		}
		defer netns.Set(orig)
		n, res, err := Setup(ctx, opts, s)
		if n != nil {
			n.Close()
		}
		return res, err
	}))
	host, guest := net.Pipe()
	go a.Serve(context.Background(), control.NewConn(guest, guest))
	cl := control.NewClient(host)
	t.Cleanup(func() { cl.Close(); guest.Close() })
	node1 := nodeapi.NewControlClient("node1", cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	setup := nodeapi.Setup{Topology: text, File: "pod-to-service.yaml", Node: "node1", NoBGP: true}

	// The datapath's objects cannot be read.
	dir := t.TempDir()
	t.Setenv(datapath.EnvObjects, dir)
	_, err = node1.Setup(ctx, setup)
	errtext.Check(t, err, "node1: node-setup: load bpf_lxc spec: "+datapath.EnvObjects+": open "+filepath.Join(dir, "lxc_bpfel.o")+": no such file or directory")

	// The first pod's lxc device name is taken.
	t.Setenv(datapath.EnvObjects, "")
	pods := top.PodsOn("node1")
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	lxc := pods[0].LXCName
	must(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: lxc}, PeerName: "taken0"}))
	_, err = node1.Setup(ctx, setup)
	errtext.Check(t, err, "node1: node-setup: pod "+pods[0].Name+": add veth "+lxc+": file exists")
}
