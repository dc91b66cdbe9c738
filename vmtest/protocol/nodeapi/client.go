package nodeapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// Caller is what Client needs of a connection to an agent: *control.Client
// and *vmtest.VM both have it.
type Caller interface {
	Call(ctx context.Context, method string, params, result any) error
}

// Client calls the node and router methods of one agent. Its errors name
// the VM and the method once, then the agent's cause ("node1: node-setup:
// load bpf_lxc: ..."); callers add only what the client does not know.
type Client struct {
	// Name is the VM's name, used in errors.
	Name string
	c    Caller
}

// NewClient returns a typed client for the agent of VM name.
func NewClient(name string, c Caller) *Client { return &Client{Name: name, c: c} }

// NewControlClient is NewClient over a control connection.
func NewControlClient(name string, c *control.Client) *Client { return NewClient(name, c) }

func (c *Client) call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	// The Caller's error already starts with the method's name
	// (control.Client.Call's contract): add only the VM's, unless the
	// error names it already (a *vmtest.VMError: QEMU exited).
	if err := c.c.Call(ctx, method, params, result); err != nil {
		var vn vmNamer
		if errors.As(err, &vn) && vn.VMName() == c.Name {
			return err
		}
		return fmt.Errorf("%s: %w", c.Name, err)
	}
	return nil
}

// vmNamer is an error that names the VM it comes from (*vmtest.VMError).
type vmNamer interface{ VMName() string }

// Setup calls MethodSetup.
func (c *Client) Setup(ctx context.Context, s Setup) (SetupResult, error) {
	var r SetupResult
	return r, c.call(ctx, MethodSetup, s, &r)
}

// RouterSetup calls MethodRouterSetup.
func (c *Client) RouterSetup(ctx context.Context, s RouterSetup) (RouterSetupResult, error) {
	var r RouterSetupResult
	return r, c.call(ctx, MethodRouterSetup, s, &r)
}

// Update calls MethodUpdate.
func (c *Client) Update(ctx context.Context, u Update) (UpdateResult, error) {
	var r UpdateResult
	return r, c.call(ctx, MethodUpdate, u, &r)
}

// Reset calls MethodReset.
func (c *Client) Reset(ctx context.Context, r Reset) (ResetResult, error) {
	var res ResetResult
	return res, c.call(ctx, MethodReset, r, &res)
}

// Run calls MethodClient.
func (c *Client) Run(ctx context.Context, req ClientAction) (ClientResult, error) {
	var r ClientResult
	return r, c.call(ctx, MethodClient, req, &r)
}

// Inject calls MethodInject.
func (c *Client) Inject(ctx context.Context, req Inject) (Injected, error) {
	var r Injected
	return r, c.call(ctx, MethodInject, req, &r)
}

// Watch calls MethodWatch.
func (c *Client) Watch(ctx context.Context, w Watch) (WatchResult, error) {
	var r WatchResult
	return r, c.call(ctx, MethodWatch, w, &r)
}

// CTList calls MethodCTList.
func (c *Client) CTList(ctx context.Context) ([]CTRow, error) {
	var r []CTRow
	return r, c.call(ctx, MethodCTList, CTListRequest{}, &r)
}

// NATList calls MethodNATList.
func (c *Client) NATList(ctx context.Context) ([]NATRow, error) {
	var r []NATRow
	return r, c.call(ctx, MethodNATList, struct{}{}, &r)
}

// CTStats calls MethodCTStats.
func (c *Client) CTStats(ctx context.Context) (CTStats, error) {
	var r CTStats
	return r, c.call(ctx, MethodCTStats, nil, &r)
}

// LBList calls MethodLBList.
func (c *Client) LBList(ctx context.Context) ([]ServiceRow, error) {
	var r []ServiceRow
	return r, c.call(ctx, MethodLBList, nil, &r)
}

// EndpointList calls MethodEndpointList.
func (c *Client) EndpointList(ctx context.Context) ([]EndpointRow, error) {
	var r []EndpointRow
	return r, c.call(ctx, MethodEndpointList, nil, &r)
}

// PolicyGet calls MethodPolicyGet.
func (c *Client) PolicyGet(ctx context.Context, endpoint string) ([]PolicyRow, error) {
	var r []PolicyRow
	return r, c.call(ctx, MethodPolicyGet, PolicyGet{Endpoint: endpoint}, &r)
}

// IPCacheList calls MethodIPCacheList.
func (c *Client) IPCacheList(ctx context.Context) ([]IPCacheRow, error) {
	var r []IPCacheRow
	return r, c.call(ctx, MethodIPCacheList, nil, &r)
}

// Metrics calls MethodMetrics.
func (c *Client) Metrics(ctx context.Context) ([]MetricRow, error) {
	var r []MetricRow
	return r, c.call(ctx, MethodMetrics, nil, &r)
}

// VerifierStats calls MethodVerifierStats.
func (c *Client) VerifierStats(ctx context.Context) ([]datapath.ProgramStats, error) {
	var r []datapath.ProgramStats
	return r, c.call(ctx, MethodVerifierStats, nil, &r)
}

// BGPPeers calls MethodBGPPeers.
func (c *Client) BGPPeers(ctx context.Context) (bgp.PeerList, error) {
	var r bgp.PeerList
	return r, c.call(ctx, MethodBGPPeers, nil, &r)
}

// BGPRoutes calls MethodBGPRoutes.
func (c *Client) BGPRoutes(ctx context.Context) (bgp.RouteList, error) {
	var r bgp.RouteList
	return r, c.call(ctx, MethodBGPRoutes, nil, &r)
}

// BGPStop calls MethodBGPStop.
func (c *Client) BGPStop(ctx context.Context) error {
	return c.call(ctx, MethodBGPStop, nil, nil)
}

// BGPStart calls MethodBGPStart.
func (c *Client) BGPStart(ctx context.Context) error {
	return c.call(ctx, MethodBGPStart, nil, nil)
}

// KernelRoutes calls MethodKernelRoutes.
func (c *Client) KernelRoutes(ctx context.Context) ([]KernelRoute, error) {
	var r []KernelRoute
	return r, c.call(ctx, MethodKernelRoutes, nil, &r)
}

// TCList calls MethodTCList.
func (c *Client) TCList(ctx context.Context) ([]TCFilterRow, error) {
	var r []TCFilterRow
	return r, c.call(ctx, MethodTCList, nil, &r)
}
