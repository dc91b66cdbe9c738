package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hoplab/hoplab/topologies"
)

func newPolicyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Explain and dump network policy",
	}
	cmd.AddCommand(newPolicyTraceCmd(a), newPolicyGetCmd(a))
	return cmd
}

func newPolicyTraceCmd(a *app) *cobra.Command {
	var (
		src, dst, proto, topo string
		dport                 uint16
		asJSON                bool
	)
	cmd := &cobra.Command{
		Use:   "trace --src PEER --dst PEER [--dport PORT] [--proto tcp|udp|icmp] [--topology T]",
		Short: "Explain the policy verdict for a flow without booting",
		Long: `Trace evaluates the topology's policies for a flow the way the datapath
does (egress at the source's from-container, ingress at the destination's
to-container; lookups L3L4 -> L4-only -> L3-only -> allow-all, else
"Policy denied"), translating a service frontend to each backend, and
explains which rule matched at which lookup level. Nothing is booted.

PEER is a pod, node or router name, or an IPv4 address. Without --topology
the topology of the running cluster (hoplab vm up) is used.`,
		Example: `  hoplab policy trace --topology policy --src pod1 --dst pod4 --dport 8080
  hoplab policy trace --topology policy --src pod1 --dst 10.224.1.1 --dport 80 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if src == "" || dst == "" {
				return fmt.Errorf("policy trace: --src and --dst are required")
			}
			p, err := topologies.ParseProtocol(proto)
			if err != nil {
				return fmt.Errorf("policy trace: --proto: %w", err)
			}
			if p != topologies.ICMP && dport == 0 {
				return fmt.Errorf("policy trace: --dport is required for %s", p)
			}
			top, err := a.topology(topo)
			if err != nil {
				return fmt.Errorf("policy trace: %w", err)
			}
			res, err := topologies.Trace(top, src, dst, dport, p)
			if err != nil {
				return fmt.Errorf("policy trace: %w", err)
			}
			if asJSON {
				return writeJSON(a.stdout, res)
			}
			_, err = fmt.Fprint(a.stdout, res.String())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&src, "src", "", "source: pod, node, router or IPv4 address")
	f.StringVar(&dst, "dst", "", "destination: pod, node, router, IPv4 address or service VIP")
	f.Uint16Var(&dport, "dport", 0, "destination port (not for icmp)")
	f.StringVar(&proto, "proto", "tcp", "protocol: tcp, udp or icmp")
	f.StringVar(&topo, "topology", "", "topology file or shipped topology name (default: the running cluster's)")
	f.BoolVar(&asJSON, "json", false, "print the trace as JSON")
	return cmd
}

// writeJSON prints v as indented JSON.
func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
