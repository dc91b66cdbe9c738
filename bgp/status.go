package bgp

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// State is a BGP session state (RFC 4271 section 8.2.2).
type State int

// Session states, in the order a session goes through them.
const (
	// StateUnknown is reported before GoBGP has said anything about a peer.
	StateUnknown State = iota
	// StateIdle refuses connections (after a reset, for GoBGP's idle hold time).
	StateIdle
	// StateConnect waits for an outgoing TCP connection.
	StateConnect
	// StateActive waits to dial again or for the peer to connect.
	StateActive
	// StateOpenSent has sent OPEN and waits for the peer's.
	StateOpenSent
	// StateOpenConfirm has exchanged OPENs and waits for a KEEPALIVE.
	StateOpenConfirm
	// StateEstablished exchanges routes.
	StateEstablished
)

// String returns the state's RFC name, as gobgp and Cilium print it.
func (s State) String() string {
	switch s {
	case StateIdle:
		return "Idle"
	case StateConnect:
		return "Connect"
	case StateActive:
		return "Active"
	case StateOpenSent:
		return "OpenSent"
	case StateOpenConfirm:
		return "OpenConfirm"
	case StateEstablished:
		return "Established"
	}
	return "Unknown"
}

// MarshalText renders the state by name, so JSON carries "Established".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name as String renders it.
func (s *State) UnmarshalText(b []byte) error {
	for st := StateUnknown; st <= StateEstablished; st++ {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("unknown bgp state %q", b)
}

// PeerStatus is one neighbour's session state and counters.
type PeerStatus struct {
	// Address is the neighbour's address.
	Address netip.Addr `json:"address"`
	// ASN is the neighbour's AS.
	ASN uint32 `json:"asn"`
	// LocalASN is the local AS used on this session.
	LocalASN uint32 `json:"local_asn"`
	// RouterID is the neighbour's BGP identifier (zero until OPEN is received).
	RouterID netip.Addr `json:"router_id"`
	// State is the session state.
	State State `json:"state"`
	// Uptime is how long the session has been Established (zero otherwise).
	Uptime time.Duration `json:"uptime"`
	// Received, Accepted and Advertised count prefixes received from the
	// neighbour, accepted by import policy, and sent to it.
	Received   uint64 `json:"received"`
	Accepted   uint64 `json:"accepted"`
	Advertised uint64 `json:"advertised"`
}

// String renders the status as one line.
func (p PeerStatus) String() string {
	return fmt.Sprintf("%v AS%d %v up %v received %d accepted %d advertised %d",
		p.Address, p.ASN, p.State, p.Uptime.Round(time.Second), p.Received, p.Accepted, p.Advertised)
}

// PeerList is the result of Speaker.Peers, sorted by address.
type PeerList []PeerStatus

// String renders the peers as a table in the spirit of `gobgp neighbor` and
// `cilium bgp peers`.
func (l PeerList) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "Peer\tAS\tLocal AS\tState\tUptime\tRouter ID\tReceived\tAccepted\tAdvertised")
	for _, p := range l {
		up := "-"
		if p.State == StateEstablished {
			up = p.Uptime.Round(time.Second).String()
		}
		id := "-"
		if p.RouterID.IsValid() && !p.RouterID.IsUnspecified() {
			id = p.RouterID.String()
		}
		fmt.Fprintf(w, "%v\t%d\t%d\t%v\t%s\t%s\t%d\t%d\t%d\n",
			p.Address, p.ASN, p.LocalASN, p.State, up, id, p.Received, p.Accepted, p.Advertised)
	}
	w.Flush()
	return b.String()
}

// Route is one path of the speaker's RIB.
type Route struct {
	// Prefix is the destination.
	Prefix netip.Prefix `json:"prefix"`
	// NextHop is the path's next hop.
	NextHop netip.Addr `json:"nexthop"`
	// ASPath lists the path's AS numbers, nearest first (sets flattened).
	ASPath []uint32 `json:"as_path"`
	// Best reports whether the path is the selected best path.
	Best bool `json:"best"`
	// Local reports whether the speaker originates the path itself.
	Local bool `json:"local"`
	// Peer is the neighbour the path was learned from (zero when Local).
	Peer netip.Addr `json:"peer"`
	// Age is how long ago the path was received or originated.
	Age time.Duration `json:"age"`
	// Installed reports whether the path is in the kernel (or whichever
	// RouteInstaller the speaker has) with this next hop.
	Installed bool `json:"installed"`
}

// String renders the route as one line.
func (r Route) String() string {
	from := "local"
	if !r.Local {
		from = r.Peer.String()
	}
	best := ""
	if r.Best {
		best = " best"
	}
	return fmt.Sprintf("%v via %v [%s] from %s%s", r.Prefix, r.NextHop, asPathString(r.ASPath), from, best)
}

func asPathString(p []uint32) string {
	s := make([]string, len(p))
	for i, as := range p {
		s[i] = fmt.Sprint(as)
	}
	return strings.Join(s, " ")
}

// RouteList is the result of Speaker.Routes, sorted by prefix with the best
// path first.
type RouteList []Route

// String renders the routes as a table in the spirit of `gobgp global rib`
// and `cilium bgp routes`: "*>" marks the best path, "i" an installed one.
func (l RouteList) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  \tPrefix\tNextHop\tAS Path\tFrom\tAge\tKernel")
	for _, r := range l {
		mark := "* "
		if r.Best {
			mark = "*>"
		}
		from := "local"
		if !r.Local {
			from = r.Peer.String()
		}
		inst := "-"
		if r.Installed {
			inst = "installed"
		}
		path := asPathString(r.ASPath)
		if path == "" {
			path = "-"
		}
		fmt.Fprintf(w, "%s\t%v\t%v\t%s\t%s\t%v\t%s\n", mark, r.Prefix, r.NextHop, path, from, r.Age.Round(time.Second), inst)
	}
	w.Flush()
	return b.String()
}

// Peers returns every configured neighbour's status.
func (s *Speaker) Peers(ctx context.Context) (PeerList, error) {
	srv, err := s.server()
	if err != nil {
		return nil, fmt.Errorf("list bgp peers: %w", err)
	}
	var l PeerList
	err = srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		l = append(l, peerStatus(p))
	})
	if err != nil {
		return nil, fmt.Errorf("list bgp peers: %w", err)
	}
	slices.SortFunc(l, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return l, nil
}

func peerStatus(p *api.Peer) PeerStatus {
	var ps PeerStatus
	st := p.GetState()
	addr := st.GetNeighborAddress()
	if addr == "" {
		addr = p.GetConf().GetNeighborAddress()
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		ps.Address = a.Unmap()
	}
	ps.ASN = cmp.Or(st.GetPeerAsn(), p.GetConf().GetPeerAsn())
	ps.LocalASN = cmp.Or(st.GetLocalAsn(), p.GetConf().GetLocalAsn())
	if id, err := netip.ParseAddr(st.GetRouterId()); err == nil {
		ps.RouterID = id
	}
	ps.State = State(st.GetSessionState())
	if up := p.GetTimers().GetState().GetUptime(); ps.State == StateEstablished && up != nil {
		ps.Uptime = time.Since(up.AsTime())
	}
	for _, af := range p.GetAfiSafis() {
		if as := af.GetState(); as != nil {
			ps.Received += as.GetReceived()
			ps.Accepted += as.GetAccepted()
			ps.Advertised += as.GetAdvertised()
		}
	}
	return ps
}

// Routes returns every path of the global RIB (IPv4 and IPv6 unicast).
func (s *Speaker) Routes(ctx context.Context) (RouteList, error) {
	srv, err := s.server()
	if err != nil {
		return nil, fmt.Errorf("list bgp routes: %w", err)
	}
	var l RouteList
	var perr error
	for _, afi := range []api.Family_Afi{api.Family_AFI_IP, api.Family_AFI_IP6} {
		err := srv.ListPath(ctx, &api.ListPathRequest{
			TableType: api.TableType_GLOBAL,
			Family:    &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST},
		}, func(d *api.Destination) {
			for _, p := range d.GetPaths() {
				r, err := routeFromPath(p)
				if err != nil {
					perr = err
					continue
				}
				r.Best = p.GetBest()
				l = append(l, r)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("list bgp routes: %w", err)
		}
	}
	if perr != nil {
		s.log.Warn("undecodable bgp path", "err", perr)
	}
	for i := range l {
		l[i].Installed = l[i].Best && s.inst.installedVia(l[i].Prefix, l[i].NextHop)
	}
	slices.SortStableFunc(l, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()); c != 0 {
			return c
		}
		switch {
		case a.Best && !b.Best:
			return -1
		case b.Best && !a.Best:
			return 1
		}
		return 0
	})
	return l, nil
}

// routeFromPath decodes a GoBGP unicast path.
func routeFromPath(p *api.Path) (Route, error) {
	var r Route
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return r, fmt.Errorf("decode nlri: %w", err)
	}
	switch nlri.(type) {
	case *bgp.IPAddrPrefix, *bgp.IPv6AddrPrefix:
	default:
		return r, fmt.Errorf("decode nlri: not a unicast prefix: %v", nlri)
	}
	pfx, err := netip.ParsePrefix(nlri.String())
	if err != nil {
		return r, fmt.Errorf("decode nlri %q: %w", nlri.String(), err)
	}
	r.Prefix = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits())
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return r, fmt.Errorf("decode attributes of %v: %w", r.Prefix, err)
	}
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			if nh, ok := netip.AddrFromSlice(a.Value); ok {
				r.NextHop = nh.Unmap()
			}
		case *bgp.PathAttributeMpReachNLRI:
			if nh, ok := netip.AddrFromSlice(a.Nexthop); ok && !r.NextHop.IsValid() {
				r.NextHop = nh.Unmap()
			}
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				r.ASPath = append(r.ASPath, seg.GetAS()...)
			}
		}
	}
	if peer, err := netip.ParseAddr(p.GetNeighborIp()); err == nil && !peer.IsUnspecified() {
		r.Peer = peer.Unmap()
	} else {
		r.Local = true
	}
	if age := p.GetAge(); age != nil {
		r.Age = time.Since(age.AsTime())
	}
	return r, nil
}
