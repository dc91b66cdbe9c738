package nodeapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/agent"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// TestClientErrorNamesVMAndMethodOnce calls a real guest agent over a pipe:
// every layer (guest agent, control.Client, Client) adds its own context
// once, so errors read "vm: method: cause".
func TestClientErrorNamesVMAndMethodOnce(t *testing.T) {
	a := agent.NewAgent(nil)
	a.Handle(MethodBGPPeers, agent.Typed(func(context.Context, struct{}) (bgp.PeerList, error) {
		return nil, errors.New("speaker not running")
	}))
	release := make(chan struct{})
	a.Handle(MethodMetrics, agent.Typed(func(context.Context, struct{}) ([]MetricRow, error) {
		<-release
		return nil, nil
	}))
	host, g := net.Pipe()
	go a.Serve(context.Background(), control.NewConn(g, g))
	cl := control.NewClient(host)
	t.Cleanup(func() { close(release); cl.Close(); g.Close() })
	c := NewControlClient("tor", cl)
	ctx := context.Background()

	_, err := c.BGPPeers(ctx)
	errtext.Check(t, err, "tor: bgp-peers: speaker not running")
	_, err = c.BGPRoutes(ctx)
	errtext.Check(t, err, "tor: bgp-routes: unknown method")
	if !errors.Is(err, control.ErrUnknownMethod) {
		t.Errorf("unknown method error %v is not ErrUnknownMethod", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.Metrics(tctx)
	errtext.Check(t, err, "tor: metrics: context deadline exceeded")
}

// callerFunc is a Caller made of a function.
type callerFunc func(ctx context.Context, method string, params, result any) error

func (f callerFunc) Call(ctx context.Context, method string, params, result any) error {
	return f(ctx, method, params, result)
}

// When QEMU exited during a call, *vmtest.VM's error is a *vmtest.VMError
// that names the VM: the client does not name it again, but does name
// another VM's.
func TestClientLeavesAnErrorNamingItsVM(t *testing.T) {
	exited := func(vm string) Caller {
		return callerFunc(func(_ context.Context, method string, _, _ any) error {
			return fmt.Errorf("%s: %w", method, &vmtest.VMError{VM: vm, Err: fmt.Errorf("%w: signal: killed", vmtest.ErrExited),
				ConsoleTail: "Kernel panic - not syncing", Dir: "/run/hoplab"})
		})
	}
	_, err := NewClient("node1", exited("node1")).Setup(context.Background(), Setup{})
	errtext.Check(t, err, "node-setup: vm node1: qemu exited: signal: killed\n--- console tail (/run/hoplab) ---\nKernel panic - not syncing")
	if !errors.Is(err, vmtest.ErrExited) {
		t.Errorf("%v does not wrap ErrExited", err)
	}
	_, err = NewClient("node2", exited("node1")).Setup(context.Background(), Setup{})
	errtext.Check(t, err, "node2: node-setup: vm node1: qemu exited: signal: killed\n--- console tail (/run/hoplab) ---\nKernel panic - not syncing")
}
