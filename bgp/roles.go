package bgp

import (
	"fmt"
	"log/slog"
	"net/netip"
)

// NodeConfig configures the node role: one session to the ToR, the node's
// PodCIDRs announced, learned routes installed.
type NodeConfig struct {
	// ASN is the node's AS; every node needs its own (65001, 65002, …), so
	// that the ToR's eBGP re-advertisement is not dropped as an AS loop.
	ASN uint32
	// Uplink is the node's uplink (bond0) address: the session's source and,
	// unless RouterID is set, the router id.
	Uplink netip.Addr
	// RouterID overrides the router id (it must be IPv4).
	RouterID netip.Addr
	// PodCIDRs are announced to the ToR with the uplink as next hop.
	PodCIDRs []netip.Prefix
	// Router is the ToR session: its address (the node's gateway), ASN and,
	// in tests, port and timers. LocalAddress defaults to Uplink.
	Router Peer
	// Installer receives the routes learned from the ToR; nil installs nothing.
	Installer RouteInstaller
	// Logger receives the speaker's logs; nil discards them.
	Logger *slog.Logger
}

// NewNode returns a node speaker (not started). It does not listen: it dials
// the ToR, which waits passively (see NewRouter).
func NewNode(cfg NodeConfig) (*Speaker, error) {
	if !cfg.Uplink.IsValid() {
		return nil, fmt.Errorf("node: %w: uplink address missing", ErrInvalidConfig)
	}
	id := cfg.RouterID
	if !id.IsValid() {
		id = cfg.Uplink
	}
	peer := cfg.Router
	if !peer.LocalAddress.IsValid() {
		peer.LocalAddress = cfg.Uplink
	}
	c := Config{
		ASN:            cfg.ASN,
		RouterID:       id,
		ListenPort:     -1,
		Logger:         cfg.Logger,
		RouteInstaller: cfg.Installer,
		Peers:          []Peer{peer},
	}
	for _, p := range cfg.PodCIDRs {
		c.Announcements = append(c.Announcements, Announcement{Prefix: p, NextHop: cfg.Uplink})
	}
	s, err := New(c)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return s, nil
}

// RouterConfig configures the ToR role: a passive eBGP session with every
// node, re-advertising what each node announces to the others with itself as
// next hop, and installing each node's prefixes via that node's address.
type RouterConfig struct {
	// ASN is the ToR's AS (65000 in the reference topology).
	ASN uint32
	// RouterID is the ToR's router id (IPv4).
	RouterID netip.Addr
	// ListenPort is the port nodes dial; 0 means 179.
	ListenPort int
	// ListenAddrs restricts the listening sockets; empty means all addresses.
	ListenAddrs []netip.Addr
	// Nodes lists one peer per node: its uplink address and its ASN, which
	// must differ from the ToR's and from every other node's. Sessions are
	// made passive: nodes dial, they do not listen.
	Nodes []Peer
	// Installer receives the nodes' prefixes; nil installs nothing.
	Installer RouteInstaller
	// Logger receives the speaker's logs; nil discards them.
	Logger *slog.Logger
}

// NewRouter returns a ToR speaker (not started). IP forwarding is left to
// the caller (the guest agent sets net.ipv4.ip_forward).
func NewRouter(cfg RouterConfig) (*Speaker, error) {
	seen := make(map[uint32]netip.Addr)
	peers := make([]Peer, 0, len(cfg.Nodes))
	for _, n := range cfg.Nodes {
		if n.ASN == cfg.ASN {
			return nil, fmt.Errorf("router: %w: node %v shares the router's AS %d (iBGP is not re-advertised)", ErrInvalidConfig, n.Address, n.ASN)
		}
		if other, dup := seen[n.ASN]; dup {
			return nil, fmt.Errorf("router: %w: nodes %v and %v share AS %d (each would drop the other's routes as an AS loop)", ErrInvalidConfig, other, n.Address, n.ASN)
		}
		seen[n.ASN] = n.Address
		n.Passive = true
		peers = append(peers, n)
	}
	s, err := New(Config{
		ASN:            cfg.ASN,
		RouterID:       cfg.RouterID,
		ListenPort:     cfg.ListenPort,
		ListenAddrs:    cfg.ListenAddrs,
		Logger:         cfg.Logger,
		RouteInstaller: cfg.Installer,
		Peers:          peers,
	})
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return s, nil
}
