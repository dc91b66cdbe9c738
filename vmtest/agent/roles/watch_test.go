package roles

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest/agent"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestAgentMethods: importing the package registers every method of the
// contract on the default agent.
func TestAgentMethods(t *testing.T) {
	have := agent.Default.Methods()
	for _, m := range []string{
		nodeapi.MethodSetup, nodeapi.MethodUpdate, nodeapi.MethodRouterSetup, nodeapi.MethodReset,
		nodeapi.MethodClient, nodeapi.MethodInject, nodeapi.MethodWatch,
		nodeapi.MethodCTList, nodeapi.MethodCTStats, nodeapi.MethodLBList, nodeapi.MethodEndpointList, nodeapi.MethodPolicyGet,
		nodeapi.MethodIPCacheList, nodeapi.MethodMetrics,
		nodeapi.MethodBGPPeers, nodeapi.MethodBGPRoutes, nodeapi.MethodBGPStop, nodeapi.MethodBGPStart,
		nodeapi.MethodKernelRoutes, nodeapi.MethodTCList,
	} {
		if !slices.Contains(have, m) {
			t.Errorf("method %s not registered (have %v)", m, have)
		}
	}
}

// TestSlowHost: a host that does not read events never blocks the node:
// traffic and the watch's stop go on, the surplus is dropped and counted.
func TestSlowHost(t *testing.T) {
	n, _, _ := testNode(t, "same-node.yaml", topologyText(t, "same-node"), "node1")
	release := make(chan struct{})
	defer close(release)
	n.opts.Emit = func(string, any) error { <-release; return nil }
	n.opts.EventQueue = 8
	ctx := context.Background()
	_, err := n.Watch(ctx, nodeapi.Watch{Datapath: true, Pods: true})
	must(t, err)
	start := time.Now()
	res, err := n.Client(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80", Count: 10})
	must(t, err)
	for _, o := range res.Outcomes {
		if !o.OK {
			t.Fatalf("request while the host is stuck: %+v", o)
		}
	}
	t.Logf("10 requests in %v with a stuck host", time.Since(start))
	time.Sleep(100 * time.Millisecond) // let the captures see the last frames
	start = time.Now()
	w, err := n.Watch(ctx, nodeapi.Watch{})
	must(t, err)
	took := time.Since(start)
	t.Logf("watch stopped in %v: dropped %d, lost %d", took, w.Dropped, w.Lost)
	if w.Dropped == 0 {
		t.Error("no events counted as dropped")
	}
	if took > senderWait+time.Second {
		t.Errorf("stopping the watch took %v", took)
	}
}

// TestDropPoints: a drop's journey point and device come from the program
// that dropped it.
func TestDropPoints(t *testing.T) {
	n, top, _ := testNode(t, "same-node.yaml", topologyText(t, "same-node"), "node1")
	pod2 := top.Pod("pod2")
	for _, c := range []struct {
		drop   datapath.DropNotify
		point  string
		device string
	}{
		{datapath.DropNotify{Reason: datapath.DropPolicy, File: fileBPFLXC, DstID: uint32(pod2.EndpointID), IfIndex: 1}, "to-container", pod2.LXCName},
		{datapath.DropNotify{Reason: datapath.DropNoService, File: fileBPFLXC, IfIndex: uint32(n.pods["pod1"].HostIndex)}, "from-container", top.Pod("pod1").LXCName},
		{datapath.DropNotify{Reason: datapath.DropInvalid, File: fileBPFNetdev, IfIndex: 1}, "from-netdev", "lo"},
	} {
		ev := n.datapathEvent(&c.drop, time.Now())
		if ev.Type != nodeapi.EventDrop || ev.Point != c.point || ev.Device != c.device || ev.Reason != c.drop.Reason.String() || ev.Node != "node1" {
			t.Errorf("%v: %+v, want %s on %s", c.drop.Reason, ev, c.point, c.device)
		}
	}
}

// TestCTState: a trace's CT verdict becomes DatapathEvent.CTState in
// nodeapi's vocabulary; points without a CT lookup (TraceReasonUnknown),
// undefined reasons and drops have none.
func TestCTState(t *testing.T) {
	n := &Node{nodeName: "node1"}
	for reason, want := range map[datapath.TraceReason]string{
		datapath.TraceReasonPolicy:        nodeapi.CTNew,
		datapath.TraceReasonCTEstablished: nodeapi.CTEstablished,
		datapath.TraceReasonCTReply:       nodeapi.CTReply,
		datapath.TraceReasonCTRelated:     nodeapi.CTRelated,
		datapath.TraceReasonUnknown:       "",
		datapath.TraceReason(7):           "",
	} {
		ev := n.datapathEvent(&datapath.TraceNotify{ObsPoint: datapath.TraceToStack, Reason: reason}, time.Now())
		if ev.Type != nodeapi.EventTrace || ev.CTState != want {
			t.Errorf("reason %v: type %s, CTState %q, want %q", reason, ev.Type, ev.CTState, want)
		}
		if want != "" && !strings.Contains(ev.Summary, "ct="+want) {
			t.Errorf("reason %v: CTState %q disagrees with the summary %q", reason, ev.CTState, ev.Summary)
		}
	}
	ev := n.datapathEvent(&datapath.DropNotify{Reason: datapath.DropPolicy, File: fileBPFNetdev}, time.Now())
	if ev.CTState != "" {
		t.Errorf("drop: CTState %q, want none", ev.CTState)
	}
}
