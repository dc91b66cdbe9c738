package nodeapi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hoplab/hoplab/bgp"
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
	if got, want := errorText(err), "tor: bgp-peers: speaker not running"; got != want {
		t.Errorf("agent error %q, want %q", got, want)
	}
	_, err = c.BGPRoutes(ctx)
	if got, want := errorText(err), "tor: bgp-routes: unknown method"; got != want || !errors.Is(err, control.ErrUnknownMethod) {
		t.Errorf("unknown method error %q (is ErrUnknownMethod: %v), want %q", got, errors.Is(err, control.ErrUnknownMethod), want)
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.Metrics(tctx)
	if got, want := errorText(err), "tor: metrics: context deadline exceeded"; got != want {
		t.Errorf("timed-out call's error %q, want %q", got, want)
	}
}

func errorText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
