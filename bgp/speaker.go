package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Errors returned by a Speaker; match them with errors.Is.
var (
	// ErrNotStarted is returned by methods called before Start.
	ErrNotStarted = errors.New("bgp speaker not started")
	// ErrStopped is returned by methods called after (or waiting across) Stop.
	ErrStopped = errors.New("bgp speaker stopped")
	// ErrUnknownPeer names a peer address that was never added (or was removed).
	ErrUnknownPeer = errors.New("unknown bgp peer")
	// ErrNotAnnounced is returned by Withdraw for a prefix the speaker does not announce.
	ErrNotAnnounced = errors.New("prefix not announced")
	// ErrInvalidConfig wraps every configuration problem found by New, AddPeer and Announce.
	ErrInvalidConfig = errors.New("invalid bgp configuration")
)

// Default timers applied to a Peer whose timer fields are zero.
const (
	// DefaultConnectRetry is the delay between connection attempts.
	DefaultConnectRetry = 1 * time.Second
	// DefaultHoldTime is the proposed hold time.
	DefaultHoldTime = 30 * time.Second
	// DefaultKeepalive is the keepalive interval.
	DefaultKeepalive = 10 * time.Second
)

// DefaultPort is the BGP port, used when a listen or peer port is zero.
const DefaultPort = 179

// Config configures a Speaker.
type Config struct {
	// ASN is the local autonomous system number.
	ASN uint32
	// RouterID is the BGP identifier; it must be an IPv4 address.
	RouterID netip.Addr
	// ListenPort is the TCP port to accept sessions on: 0 means 179, -1 means
	// do not listen (the speaker only dials out).
	ListenPort int
	// ListenAddrs restricts the listening sockets; empty means all addresses.
	ListenAddrs []netip.Addr
	// Logger receives the speaker's and GoBGP's logs; nil discards them.
	Logger *slog.Logger
	// RouteInstaller receives learned best paths; nil installs nothing.
	RouteInstaller RouteInstaller
	// Peers are added by Start.
	Peers []Peer
	// Announcements are originated by Start.
	Announcements []Announcement
}

// Announcement is a prefix the speaker originates, with the next hop it
// carries. A zero NextHop lets GoBGP use the session's local address (it does
// so for every eBGP peer anyway).
type Announcement struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
}

// Peer configures one BGP neighbour.
type Peer struct {
	// Address is the neighbour's address; sessions are matched by it.
	Address netip.Addr
	// ASN is the neighbour's AS; equal to the local ASN makes an iBGP session.
	ASN uint32
	// Port is the neighbour's TCP port; 0 means 179.
	Port int
	// LocalAddress is the source address of the session; zero lets the kernel choose.
	LocalAddress netip.Addr
	// ConnectRetry is the delay between connection attempts (and the idle
	// hold time after a reset); zero means DefaultConnectRetry. GoBGP works
	// in whole seconds, 1 s at least.
	ConnectRetry time.Duration
	// HoldTime is the proposed hold time; zero means DefaultHoldTime.
	HoldTime time.Duration
	// Keepalive is the keepalive interval; zero means DefaultKeepalive.
	Keepalive time.Duration
	// RouteServerClient makes the neighbour a route-server client: paths
	// pass through unchanged (no local AS prepended, next hop kept). Such
	// paths live in per-client RIBs, outside Routes and route installation.
	RouteServerClient bool
	// Passive makes the speaker wait for the neighbour to connect.
	Passive bool
}

// Speaker is one embedded BGP speaker. Create it with New (or NewNode,
// NewRouter), then Start it; Stop releases it. Its methods are safe for
// concurrent use.
type Speaker struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	srv       *server.BgpServer
	started   bool
	stopped   bool
	cancel    context.CancelFunc
	peers     map[netip.Addr]State
	changed   chan struct{} // closed and replaced on every peer state change
	announced map[netip.Prefix]netip.Addr

	inst *installState
}

// New checks cfg and returns a speaker that is not running yet.
func New(cfg Config) (*Speaker, error) {
	if cfg.ASN == 0 {
		return nil, fmt.Errorf("%w: ASN is zero", ErrInvalidConfig)
	}
	if !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("%w: router id %v is not an IPv4 address", ErrInvalidConfig, cfg.RouterID)
	}
	if cfg.ListenPort < -1 || cfg.ListenPort > 65535 {
		return nil, fmt.Errorf("%w: listen port %d", ErrInvalidConfig, cfg.ListenPort)
	}
	for _, p := range cfg.Peers {
		if err := p.validate(); err != nil {
			return nil, err
		}
	}
	for _, a := range cfg.Announcements {
		if _, _, err := announcement(a.Prefix, a.NextHop); err != nil {
			return nil, err
		}
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	l = l.With("asn", cfg.ASN, "router_id", cfg.RouterID)
	return &Speaker{
		cfg:       cfg,
		log:       l,
		peers:     make(map[netip.Addr]State),
		changed:   make(chan struct{}),
		announced: make(map[netip.Prefix]netip.Addr),
		inst:      newInstallState(cfg.RouteInstaller, l),
	}, nil
}

// Start starts GoBGP, its listener (unless ListenPort is -1), the event
// watches, and then adds Config.Peers and originates Config.Announcements.
// ctx bounds start-up only; the speaker runs until Stop.
func (s *Speaker) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("start bgp speaker: already started")
	}
	s.started = true
	srv := server.NewBgpServer(server.LoggerOption(slogAdapter{s.log.With("component", "gobgp")}))
	s.srv = srv
	watchCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.mu.Unlock()

	go srv.Serve()
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()

	port := int32(s.cfg.ListenPort)
	if port == 0 {
		port = DefaultPort
	}
	var listen []string
	for _, a := range s.cfg.ListenAddrs {
		listen = append(listen, a.String())
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:             s.cfg.ASN,
		RouterId:        s.cfg.RouterID.String(),
		ListenPort:      port,
		ListenAddresses: listen,
	}}); err != nil {
		return fmt.Errorf("start bgp speaker: %w", err)
	}
	if err := srv.WatchEvent(watchCtx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, s.onEvent); err != nil {
		return fmt.Errorf("watch bgp peer events: %w", err)
	}
	if err := srv.WatchEvent(watchCtx, &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
		Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true}},
	}}, s.onEvent); err != nil {
		return fmt.Errorf("watch bgp best paths: %w", err)
	}
	s.log.Info("bgp speaker started", "listen_port", s.cfg.ListenPort)
	for _, p := range s.cfg.Peers {
		if err := s.AddPeer(ctx, p); err != nil {
			return err
		}
	}
	for _, a := range s.cfg.Announcements {
		if err := s.Announce(ctx, a.Prefix, a.NextHop); err != nil {
			return err
		}
	}
	return nil
}

// server returns the running GoBGP server or why there is none.
func (s *Speaker) server() (*server.BgpServer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return nil, ErrStopped
	case !s.started:
		return nil, ErrNotStarted
	}
	return s.srv, nil
}

// Stop closes every session (sending a Cease notification), stops listening
// and removes every route the speaker installed. It is safe to call more
// than once, and before Start.
func (s *Speaker) Stop() {
	s.mu.Lock()
	if !s.started || s.stopped {
		s.stopped = true
		s.mu.Unlock()
		return
	}
	s.stopped = true
	srv, cancel := s.srv, s.cancel
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	srv.Stop()
	cancel()
	s.inst.removeAll()
	s.log.Info("bgp speaker stopped")
}

func (p Peer) validate() error {
	if !p.Address.IsValid() {
		return fmt.Errorf("%w: peer address missing", ErrInvalidConfig)
	}
	if p.ASN == 0 {
		return fmt.Errorf("%w: peer %v: ASN is zero", ErrInvalidConfig, p.Address)
	}
	if p.Port < 0 || p.Port > 65535 {
		return fmt.Errorf("%w: peer %v: port %d", ErrInvalidConfig, p.Address, p.Port)
	}
	if p.LocalAddress.IsValid() && p.LocalAddress.Unmap().Is4() != p.Address.Unmap().Is4() {
		return fmt.Errorf("%w: peer %v: local address %v is of another family", ErrInvalidConfig, p.Address, p.LocalAddress)
	}
	return nil
}

// seconds converts a timer to GoBGP's whole seconds, using def when d is zero.
func seconds(d, def time.Duration) uint64 {
	if d <= 0 {
		d = def
	}
	s := uint64((d + time.Second/2) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// AddPeer configures a neighbour. Its session comes up in the background;
// use WaitEstablished to wait for it.
func (s *Speaker) AddPeer(ctx context.Context, p Peer) error {
	if err := p.validate(); err != nil {
		return err
	}
	srv, err := s.server()
	if err != nil {
		return fmt.Errorf("add peer %v: %w", p.Address, err)
	}
	addr := p.Address.Unmap()
	afi := api.Family_AFI_IP
	if addr.Is6() {
		afi = api.Family_AFI_IP6
	}
	retry := seconds(p.ConnectRetry, DefaultConnectRetry)
	port := uint32(p.Port)
	if port == 0 {
		port = DefaultPort
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: addr.String(), PeerAsn: p.ASN},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           retry,
			HoldTime:               seconds(p.HoldTime, DefaultHoldTime),
			KeepaliveInterval:      seconds(p.Keepalive, DefaultKeepalive),
			IdleHoldTimeAfterReset: retry,
		}},
		Transport:   &api.Transport{RemotePort: port, PassiveMode: p.Passive},
		RouteServer: &api.RouteServer{RouteServerClient: p.RouteServerClient},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
			Family:  &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST},
			Enabled: true,
		}}},
	}
	if p.LocalAddress.IsValid() {
		ap.Transport.LocalAddress = p.LocalAddress.Unmap().String()
	}

	s.mu.Lock()
	if _, dup := s.peers[addr]; dup {
		s.mu.Unlock()
		return fmt.Errorf("add peer %v: %w: already configured", addr, ErrInvalidConfig)
	}
	s.peers[addr] = StateIdle
	s.mu.Unlock()

	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: ap}); err != nil {
		s.mu.Lock()
		delete(s.peers, addr)
		s.mu.Unlock()
		return fmt.Errorf("add peer %v: %w", addr, err)
	}
	s.log.Info("bgp peer added", "peer", addr, "peer_asn", p.ASN, "port", port, "passive", p.Passive)
	return nil
}

// RemovePeer closes the session with addr and forgets the neighbour; the
// routes learned from it are withdrawn (and removed from the kernel).
func (s *Speaker) RemovePeer(ctx context.Context, addr netip.Addr) error {
	srv, err := s.server()
	if err != nil {
		return fmt.Errorf("remove peer %v: %w", addr, err)
	}
	addr = addr.Unmap()
	s.mu.Lock()
	_, ok := s.peers[addr]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("remove peer %v: %w", addr, ErrUnknownPeer)
	}
	if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("remove peer %v: %w", addr, err)
	}
	s.mu.Lock()
	delete(s.peers, addr)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.log.Info("bgp peer removed", "peer", addr)
	return nil
}

// WaitEstablished blocks until the session with addr is Established, driven
// by GoBGP's peer events (no polling). It fails when ctx ends first, when the
// peer is unknown or removed, or when the speaker stops.
func (s *Speaker) WaitEstablished(ctx context.Context, addr netip.Addr) error {
	addr = addr.Unmap()
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return fmt.Errorf("wait for peer %v: %w", addr, ErrStopped)
		}
		if !s.started {
			s.mu.Unlock()
			return fmt.Errorf("wait for peer %v: %w", addr, ErrNotStarted)
		}
		st, ok := s.peers[addr]
		ch := s.changed
		s.mu.Unlock()
		if !ok {
			return fmt.Errorf("wait for peer %v: %w", addr, ErrUnknownPeer)
		}
		if st == StateEstablished {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for peer %v established (state %v): %w", addr, st, ctx.Err())
		}
	}
}

// onEvent handles GoBGP's watch events; GoBGP calls it from one goroutine
// per watch, in order.
func (s *Speaker) onEvent(r *api.WatchEventResponse) {
	if pe := r.GetPeer(); pe != nil {
		s.onPeerEvent(pe)
	}
	if te := r.GetTable(); te != nil {
		s.inst.apply(te.GetPaths(), s.isAnnounced)
	}
}

func (s *Speaker) onPeerEvent(pe *api.WatchEventResponse_PeerEvent) {
	st := pe.GetPeer().GetState()
	addr, err := netip.ParseAddr(st.GetNeighborAddress())
	if err != nil {
		return // the end-of-init marker names no peer
	}
	addr = addr.Unmap()
	state := State(st.GetSessionState())
	s.mu.Lock()
	old, ok := s.peers[addr]
	if !ok || s.stopped || old == state {
		s.mu.Unlock()
		return
	}
	s.peers[addr] = state
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	level := slog.LevelDebug
	if state == StateEstablished || old == StateEstablished {
		level = slog.LevelInfo
	}
	s.log.Log(context.Background(), level, "bgp peer state", "peer", addr, "from", old, "to", state)
}

func (s *Speaker) isAnnounced(p netip.Prefix) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.announced[p]
	return ok
}

// announcement builds the GoBGP path for prefix with nexthop.
func announcement(prefix netip.Prefix, nexthop netip.Addr) (netip.Prefix, *api.Path, error) {
	if !prefix.IsValid() {
		return prefix, nil, fmt.Errorf("%w: invalid prefix %v", ErrInvalidConfig, prefix)
	}
	prefix = netip.PrefixFrom(prefix.Addr().Unmap(), prefix.Bits()).Masked()
	v4 := prefix.Addr().Is4()
	if !nexthop.IsValid() {
		nexthop = netip.IPv4Unspecified()
		if !v4 {
			nexthop = netip.IPv6Unspecified()
		}
	}
	nexthop = nexthop.Unmap()
	if nexthop.Is4() != v4 {
		return prefix, nil, fmt.Errorf("%w: next hop %v for %v is of another family", ErrInvalidConfig, nexthop, prefix)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	var nlri bgp.AddrPrefixInterface
	if v4 {
		nlri = bgp.NewIPAddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
		attrs = append(attrs, bgp.NewPathAttributeNextHop(nexthop.String()))
	} else {
		nlri = bgp.NewIPv6AddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nexthop.String(), []bgp.AddrPrefixInterface{nlri}))
	}
	path, err := apiutil.NewPath(nlri, false, attrs, time.Now())
	if err != nil {
		return prefix, nil, fmt.Errorf("encode path for %v: %w", prefix, err)
	}
	return prefix, path, nil
}

// Announce originates prefix with nexthop (zero: the session's local
// address) to every peer. Announcing a prefix again replaces its next hop.
func (s *Speaker) Announce(ctx context.Context, prefix netip.Prefix, nexthop netip.Addr) error {
	prefix, path, err := announcement(prefix, nexthop)
	if err != nil {
		return fmt.Errorf("announce %v: %w", prefix, err)
	}
	srv, err := s.server()
	if err != nil {
		return fmt.Errorf("announce %v: %w", prefix, err)
	}
	s.mu.Lock()
	prev, had := s.announced[prefix]
	s.announced[prefix] = nexthop
	s.mu.Unlock()
	if _, err := srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
		s.mu.Lock()
		if had {
			s.announced[prefix] = prev
		} else {
			delete(s.announced, prefix)
		}
		s.mu.Unlock()
		return fmt.Errorf("announce %v: %w", prefix, err)
	}
	nh := "session address"
	if nexthop.IsValid() {
		nh = nexthop.String()
	}
	s.log.Info("bgp announce", "prefix", prefix, "nexthop", nh)
	return nil
}

// Withdraw stops originating prefix.
func (s *Speaker) Withdraw(ctx context.Context, prefix netip.Prefix) error {
	if !prefix.IsValid() {
		return fmt.Errorf("withdraw %v: %w: invalid prefix", prefix, ErrInvalidConfig)
	}
	prefix = netip.PrefixFrom(prefix.Addr().Unmap(), prefix.Bits()).Masked()
	srv, err := s.server()
	if err != nil {
		return fmt.Errorf("withdraw %v: %w", prefix, err)
	}
	s.mu.Lock()
	nh, ok := s.announced[prefix]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("withdraw %v: %w", prefix, ErrNotAnnounced)
	}
	_, path, err := announcement(prefix, nh)
	if err != nil {
		return fmt.Errorf("withdraw %v: %w", prefix, err)
	}
	path.IsWithdraw = true
	// Forget the prefix first, so that a learned path that becomes best
	// when ours goes is installed.
	s.mu.Lock()
	delete(s.announced, prefix)
	s.mu.Unlock()
	if err := srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path}); err != nil {
		s.mu.Lock()
		if _, again := s.announced[prefix]; !again {
			s.announced[prefix] = nh
		}
		s.mu.Unlock()
		return fmt.Errorf("withdraw %v: %w", prefix, err)
	}
	s.log.Info("bgp withdraw", "prefix", prefix)
	// A learned path that was already best (and skipped while we
	// originated the prefix) produces no best-path event: look it up.
	if err := s.resync(ctx, srv, prefix, path.Family); err != nil {
		s.log.Warn("resync after withdraw", "prefix", prefix, "err", err)
	}
	return nil
}

// resync hands prefix's current best path to the installer.
func (s *Speaker) resync(ctx context.Context, srv *server.BgpServer, prefix netip.Prefix, fam *api.Family) error {
	var best []*api.Path
	err := srv.ListPath(ctx, &api.ListPathRequest{
		TableType: api.TableType_GLOBAL,
		Family:    fam,
		Prefixes:  []*api.TableLookupPrefix{{Prefix: prefix.String()}},
	}, func(d *api.Destination) {
		for _, p := range d.GetPaths() {
			if p.GetBest() {
				best = append(best, p)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("look up %v: %w", prefix, err)
	}
	s.inst.apply(best, s.isAnnounced)
	return nil
}
