package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hoplab/hoplab/bgp"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// dumpTimeout bounds one dump call to an agent.
const dumpTimeout = 30 * time.Second

// dumpCmd builds a command that fetches one dump from a node of the
// running cluster and prints it in Cilium's layout, or as JSON rows.
func dumpCmd[T any](a *app, use, short, long string, args cobra.PositionalArgs,
	fetch func(ctx context.Context, cl *nodeapi.Client, args []string) (T, error),
	format func(io.Writer, T) error) *cobra.Command {
	var node string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long + "\n\nThe dump comes from the agent of --node in the cluster 'hoplab vm up' holds.",
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, done, err := a.nodeClient(node)
			if err != nil {
				return fmt.Errorf("%s: %w", cmd.CommandPath()[len("hoplab "):], err)
			}
			defer done()
			ctx, cancel := context.WithTimeout(cmd.Context(), dumpTimeout)
			defer cancel()
			rows, err := fetch(ctx, cl, args)
			if err != nil {
				return err // "node1: ct-list: ...": the node and the method
			}
			if asJSON {
				return writeJSON(a.stdout, rows)
			}
			return format(a.stdout, rows)
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "node (or router) to ask (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rows as JSON")
	return cmd
}

// group is a parent command without behaviour of its own.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short}
	c.AddCommand(subs...)
	return c
}

// newDumpCmds returns the dump commands: ct, lb, endpoint, ipcache,
// metrics, bgp (policy get is under policy).
func newDumpCmds(a *app) []*cobra.Command {
	return []*cobra.Command{
		group("ct", "Dump connection tracking entries (ct list)", dumpCmd(a, "list --node N", "List a node's CT entries like 'cilium bpf ct list global'",
			"List dumps the node's connection-tracking map: tuple, expiry, packet and byte counters, flags, reverse-NAT and source identity.", cobra.NoArgs,
			func(ctx context.Context, cl *nodeapi.Client, _ []string) ([]nodeapi.CTRow, error) {
				return cl.CTList(ctx)
			},
			nodeapi.FormatCT)),
		group("nat", "Dump the SNAT table (nat list)", dumpCmd(a, "list --node N", "List a node's SNAT entries like 'cilium bpf nat list'",
			"List dumps the node's SNAT table: for each NodePort connection to a backend on another node, the egress entry (the client's address and port, translated to the node's) and the reply's entry (translated back).", cobra.NoArgs,
			func(ctx context.Context, cl *nodeapi.Client, _ []string) ([]nodeapi.NATRow, error) {
				return cl.NATList(ctx)
			},
			nodeapi.FormatNAT)),
		group("lb", "Dump services and backends (lb list)", dumpCmd(a, "list --node N", "List a node's services and backends like 'cilium bpf lb list'",
			"List dumps the node's service map: each frontend with its backends.", cobra.NoArgs,
			func(ctx context.Context, cl *nodeapi.Client, _ []string) ([]nodeapi.ServiceRow, error) {
				return cl.LBList(ctx)
			},
			nodeapi.FormatLB)),
		group("endpoint", "Dump endpoints (endpoint list)", dumpCmd(a, "list --node N", "List a node's endpoints like 'cilium endpoint list'",
			"List dumps the node's endpoints: id, policy enforcement, identity, labels, IP and interface.", cobra.NoArgs,
			func(ctx context.Context, cl *nodeapi.Client, _ []string) ([]nodeapi.EndpointRow, error) {
				return cl.EndpointList(ctx)
			},
			nodeapi.FormatEndpoints)),
		group("ipcache", "Dump the ipcache (ipcache list)", dumpCmd(a, "list --node N", "List a node's ipcache like 'cilium bpf ipcache list'",
			"List dumps the node's ipcache: prefix to identity (and tunnel endpoint).", cobra.NoArgs,
			func(ctx context.Context, cl *nodeapi.Client, _ []string) ([]nodeapi.IPCacheRow, error) {
				return cl.IPCacheList(ctx)
			},
			nodeapi.FormatIPCache)),
		dumpCmd(a, "metrics --node N", "Show a node's datapath counters like 'cilium bpf metrics list'",
			"Metrics dumps the node's metrics map: forwarded and dropped packets and bytes per reason and direction.", cobra.NoArgs,
			func(ctx context.Context, cl *nodeapi.Client, _ []string) ([]nodeapi.MetricRow, error) {
				return cl.Metrics(ctx)
			},
			nodeapi.FormatMetrics),
		group("bgp", "Dump BGP sessions and routes (bgp peers, bgp routes)",
			dumpCmd(a, "routes --node N", "Show a speaker's BGP routes like 'cilium bgp routes'",
				"Routes dumps the speaker's RIB: prefixes, next hops, AS paths, best paths.", cobra.NoArgs,
				func(ctx context.Context, cl *nodeapi.Client, _ []string) (bgp.RouteList, error) {
					return cl.BGPRoutes(ctx)
				},
				nodeapi.FormatBGPRoutes),
			dumpCmd(a, "peers --node N", "Show a speaker's BGP sessions like 'cilium bgp peers'",
				"Peers dumps the speaker's sessions: peer address and AS, state, uptime, routes received and advertised.", cobra.NoArgs,
				func(ctx context.Context, cl *nodeapi.Client, _ []string) (bgp.PeerList, error) {
					return cl.BGPPeers(ctx)
				},
				nodeapi.FormatBGPPeers),
		),
	}
}

func newPolicyGetCmd(a *app) *cobra.Command {
	return dumpCmd(a, "get ENDPOINT --node N", "Dump an endpoint's policy map like 'cilium bpf policy get'",
		"Get dumps the policy map of ENDPOINT (a pod name or endpoint id) on its node: direction, identity, port, protocol, lookup level and counters.",
		cobra.ExactArgs(1),
		func(ctx context.Context, cl *nodeapi.Client, args []string) ([]nodeapi.PolicyRow, error) {
			return cl.PolicyGet(ctx, args[0])
		},
		nodeapi.FormatPolicy)
}
