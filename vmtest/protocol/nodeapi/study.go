package nodeapi

import (
	"context"
	"net/netip"
	"time"

	"github.com/hoplab/hoplab/vmtest/agent/workload"
)

// Methods of the eBPF-versus-iptables study (hoplab study): the perf
// workload, served by a node in either mode, and the bridge baseline.
const (
	// MethodPerfServe (PerfServe → empty) starts a perf server
	// (workload.ServePerf) in a pod of the node, once per pod and port.
	MethodPerfServe = "perf-serve"
	// MethodPerf (Perf → workload.PerfResult) runs one perf measurement
	// from a pod of the node.
	MethodPerf = "perf"
	// MethodBaselineSetup (BaselineSetup → BaselineSetupResult) makes the
	// VM the study's baseline node: whatever role it had is closed, and
	// its pods hang off a Linux bridge (no BPF program attached anywhere),
	// with the bridge holding the router IP, the PodCIDR announced over BGP
	// as a node would, and bridged IPv4 handed to netfilter
	// (br_netfilter).
	MethodBaselineSetup = "baseline-setup"
	// MethodBaselineRules (BaselineRules → BaselineRulesResult) replaces
	// the rules of the baseline's FORWARD chain (table ip filter, as
	// iptables-nft makes it).
	MethodBaselineRules = "baseline-rules"
)

// PerfServe is MethodPerfServe's request.
type PerfServe struct {
	Pod  string `json:"pod"`
	Port uint16 `json:"port"`
}

// Perf is MethodPerf's request: one measurement of Kind
// (workload.PerfBulk or workload.PerfRR) from Pod to Dst ("ip:port" of a
// perf server) for Duration.
type Perf struct {
	Pod      string        `json:"pod"`
	Kind     string        `json:"kind"`
	Dst      string        `json:"dst"`
	Duration time.Duration `json:"duration"`
	// RequestSize and ResponseSize are the TCP_RR sizes; 0 means the
	// defaults (100 and 200 bytes).
	RequestSize  int `json:"request_size,omitempty"`
	ResponseSize int `json:"response_size,omitempty"`
}

// BaselineSetup is MethodBaselineSetup's request.
type BaselineSetup struct {
	Topology string `json:"topology"`
	File     string `json:"file"`
	Node     string `json:"node"`
	// NoBGP leaves the speaker off (tests on the host).
	NoBGP bool `json:"no_bgp,omitempty"`
}

// BaselineSetupResult is MethodBaselineSetup's response.
type BaselineSetupResult struct {
	// Bridge is the bridge's name; Pods the pods attached to it.
	Bridge string        `json:"bridge"`
	Pods   []string      `json:"pods"`
	Took   time.Duration `json:"took"`
}

// Baseline rule variants (BaselineRules.Variant), those of the study.
const (
	// RulesNoMatch: Count rules, none of which matches the measured
	// traffic, so every packet traverses all of them before the chain's
	// accept policy.
	RulesNoMatch = "no-match"
	// RulesMatch: a rule accepting the measured traffic (both
	// directions) at the top, then Count-1 rules it never reaches.
	RulesMatch = "match"
)

// BaselineRules is MethodBaselineRules's request: the FORWARD chain gets
// Count rules of Variant protecting Server's Port, each an iptables-nft
// "-s Client/32 -d Server/32 -p tcp --dport PORT -j ACCEPT" for ports
// other than Port; the match variant's first rule is "-s PodNetwork -d
// PodNetwork -j ACCEPT". Count 0 leaves the chain empty (it still hooks
// forward).
type BaselineRules struct {
	Variant    string       `json:"variant"`
	Count      int          `json:"count"`
	Client     netip.Addr   `json:"client"`
	Server     netip.Addr   `json:"server"`
	Port       uint16       `json:"port"`
	PodNetwork netip.Prefix `json:"pod_network"`
}

// BaselineRulesResult is MethodBaselineRules's response.
type BaselineRulesResult struct {
	// Rules is how many rules the chain holds now, read back.
	Rules int           `json:"rules"`
	Took  time.Duration `json:"took"`
}

// PerfServe calls MethodPerfServe.
func (c *Client) PerfServe(ctx context.Context, s PerfServe) error {
	return c.call(ctx, MethodPerfServe, s, nil)
}

// Perf calls MethodPerf.
func (c *Client) Perf(ctx context.Context, p Perf) (workload.PerfResult, error) {
	var r workload.PerfResult
	return r, c.call(ctx, MethodPerf, p, &r)
}

// BaselineSetup calls MethodBaselineSetup.
func (c *Client) BaselineSetup(ctx context.Context, s BaselineSetup) (BaselineSetupResult, error) {
	var r BaselineSetupResult
	return r, c.call(ctx, MethodBaselineSetup, s, &r)
}

// BaselineRules calls MethodBaselineRules.
func (c *Client) BaselineRules(ctx context.Context, r BaselineRules) (BaselineRulesResult, error) {
	var res BaselineRulesResult
	return res, c.call(ctx, MethodBaselineRules, r, &res)
}
