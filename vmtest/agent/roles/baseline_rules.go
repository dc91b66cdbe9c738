package roles

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// The baseline's netfilter objects: the table and base chain iptables-nft
// creates for `iptables -A FORWARD ...`, so `iptables-nft -L FORWARD`
// would list the rules.
const (
	BaselineTable = "filter"
	BaselineChain = "FORWARD"
)

// Limits of the baseline's rules.
const (
	// MaxBaselineRules is the most rules BaselineRules installs.
	MaxBaselineRules = 40000
	// baselineFirstPort is the first port of the rules that do not match
	// the measured traffic (ports BaselineRules.Port is skipped).
	baselineFirstPort = 20000
	// baselineBatch is how many rules go to the kernel in one netlink
	// batch: a batch is sent as one message, and one of 500 rules is
	// longer than the socket takes (EMSGSIZE).
	baselineBatch = 100
)

// ruleExprs returns the expressions of each rule of r, in chain order:
// what iptables-nft installs for the equivalent iptables rules. A rule
// "-s C/32 -d S/32 -p tcp --dport P -j ACCEPT" is
//
//	payload ip saddr → reg1, cmp == C, payload ip daddr → reg1, cmp == S,
//	meta l4proto → reg1, cmp == tcp, payload th dport → reg1, cmp == P,
//	verdict accept
//
// (iptables-nft adds a counter too; it runs only in a rule whose
// comparisons all passed, so it is left out). The match variant's first
// rule is "-s NET -d NET -j ACCEPT": a masked comparison of both addresses.
func ruleExprs(r nodeapi.BaselineRules) ([][]expr.Any, error) {
	switch {
	case r.Variant != nodeapi.RulesNoMatch && r.Variant != nodeapi.RulesMatch:
		return nil, fmt.Errorf("rule variant %q: want %s or %s", r.Variant, nodeapi.RulesNoMatch, nodeapi.RulesMatch)
	case r.Count < 0 || r.Count > MaxBaselineRules:
		return nil, fmt.Errorf("rule count %d outside 0..%d", r.Count, MaxBaselineRules)
	case r.Count == 0:
		return nil, nil
	case !r.Client.Is4() || !r.Server.Is4():
		return nil, fmt.Errorf("client %v and server %v must be IPv4 addresses", r.Client, r.Server)
	case r.Port == 0:
		return nil, errors.New("no port")
	case r.Variant == nodeapi.RulesMatch && (!r.PodNetwork.IsValid() || !r.PodNetwork.Addr().Is4() ||
		!r.PodNetwork.Contains(r.Client) || !r.PodNetwork.Contains(r.Server)):
		return nil, fmt.Errorf("pod network %v must hold client %v and server %v", r.PodNetwork, r.Client, r.Server)
	}
	out := make([][]expr.Any, 0, r.Count)
	if r.Variant == nodeapi.RulesMatch {
		out = append(out, netAcceptExprs(r.PodNetwork.Masked().Addr().AsSlice(), net.CIDRMask(r.PodNetwork.Bits(), 32)))
	}
	client, server := r.Client.AsSlice(), r.Server.AsSlice()
	for port := baselineFirstPort; len(out) < r.Count; port++ {
		if port == int(r.Port) {
			continue
		}
		if port > 65535 {
			return nil, fmt.Errorf("%d rules need more ports than %d..65535", r.Count, baselineFirstPort)
		}
		out = append(out, portAcceptExprs(client, server, uint16(port)))
	}
	return out, nil
}

// portAcceptExprs is "-s src/32 -d dst/32 -p tcp --dport port -j ACCEPT".
func portAcceptExprs(src, dst []byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: src},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: dst},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// netAcceptExprs is "-s net -d net -j ACCEPT".
func netAcceptExprs(addr, mask []byte) []expr.Any {
	var out []expr.Any
	for _, off := range []uint32{12, 16} {
		out = append(out,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
		)
	}
	return append(out, &expr.Verdict{Kind: expr.VerdictAccept})
}

// applyRules makes table ip filter with base chain FORWARD (hook forward,
// priority filter, the given policy: accept in the study) in the
// network namespace ns (a file descriptor), replaces the chain's rules
// with rules, and returns how many rules the kernel then lists in the
// chain.
func applyRules(ns int, policy nftables.ChainPolicy, rules [][]expr.Any) (int, error) {
	c, err := nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(ns))
	if err != nil {
		return 0, fmt.Errorf("nftables: %w", err)
	}
	defer c.CloseLasting()
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: BaselineTable})
	chain := c.AddChain(&nftables.Chain{
		Name: BaselineChain, Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policy,
	})
	c.FlushChain(chain)
	for i, r := range rules {
		c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: r})
		if (i+1)%baselineBatch == 0 {
			if err := c.Flush(); err != nil {
				return 0, fmt.Errorf("nftables: rules up to %d: %w", i+1, err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return 0, fmt.Errorf("nftables: %w", err)
	}
	got, err := c.GetRules(table, chain)
	if err != nil {
		return 0, fmt.Errorf("nftables: list %s: %w", BaselineChain, err)
	}
	return len(got), nil
}

// deleteRules removes table ip filter of network namespace ns, if there
// is one.
func deleteRules(ns int) error {
	c, err := nftables.New(nftables.WithNetNSFd(ns))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, t := range tables {
		if t.Name == BaselineTable {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("nftables: delete table %s: %w", BaselineTable, err)
			}
		}
	}
	return nil
}
