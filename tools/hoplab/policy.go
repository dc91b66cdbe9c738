package main

import (
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"strings"

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
		http                  httpFlags
	)
	cmd := &cobra.Command{
		Use:   "trace --src PEER --dst PEER [--dport PORT] [--proto tcp|udp|icmp] [--http-method M --http-path P] [--topology T]",
		Short: "Explain the policy verdict for a flow without booting",
		Long: `Trace evaluates the topology's policies for a flow the way the datapath
does (egress at the source's from-container, ingress at the destination's
to-container; lookups L3L4 -> L4-only -> L3-only -> allow-all, else
"Policy denied"), translating a service frontend to each backend, and
explains which rule matched at which lookup level. Nothing is booted.

Where a flow's policy entry redirects it to the node's L7 proxy (a toPorts
entry with HTTP rules), the trace lists the port's rules; with --http-method
and --http-path (and --http-host, --http-header "Name: value") it decides
that request as the proxy does: allowed by which rule, or denied with 403
"Access denied" at point proxy.

PEER is a pod, node or router name, or an IPv4 address. Without --topology
the topology of the running cluster (hoplab vm up) is used.`,
		Example: `  hoplab policy trace --topology policy --src pod1 --dst pod4 --dport 8080
  hoplab policy trace --topology policy --src pod1 --dst 10.224.1.1 --dport 80 --json
  hoplab policy trace --topology l7 --src pod1 --dst pod4 --dport 8080 --http-method GET --http-path /public/a`,
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
			req, err := http.request(p)
			if err != nil {
				return fmt.Errorf("policy trace: %w", err)
			}
			top, err := a.topology(topo)
			if err != nil {
				return fmt.Errorf("policy trace: %w", err)
			}
			res, err := topologies.TraceRequest(top, src, dst, dport, p, req)
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
	f.StringVar(&http.method, "http-method", "", "HTTP request method for L7 rules (GET)")
	f.StringVar(&http.path, "http-path", "", "HTTP request path for L7 rules (/public/a)")
	f.StringVar(&http.host, "http-host", "", "HTTP Host header for L7 rules")
	f.StringArrayVar(&http.headers, "http-header", nil, `HTTP header for L7 rules, "Name: value" (repeatable)`)
	return cmd
}

// httpFlags are policy trace's HTTP request.
type httpFlags struct {
	method, path, host string
	headers            []string
}

// request returns the HTTP request the flags describe, nil when none is
// given.
func (h httpFlags) request(proto topologies.Protocol) (*topologies.HTTPRequest, error) {
	if h.method == "" && h.path == "" && h.host == "" && len(h.headers) == 0 {
		return nil, nil
	}
	if h.method == "" || h.path == "" {
		return nil, fmt.Errorf("--http-method and --http-path go together")
	}
	if proto != topologies.TCP {
		return nil, fmt.Errorf("an HTTP request needs --proto tcp")
	}
	req := &topologies.HTTPRequest{Method: h.method, Path: h.path, Host: h.host, Header: nethttp.Header{}}
	for _, hv := range h.headers {
		name, value, ok := strings.Cut(hv, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("--http-header %q: want \"Name: value\"", hv)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return req, nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
