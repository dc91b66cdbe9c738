package topologies

import (
	"fmt"
	"sort"
)

// Direction is a policy direction. The values are those of the datapath
// package's Go API (datapath.Ingress, datapath.Egress), so a conversion
// carries them over; the zero value is invalid.
type Direction uint8

// Directions (checked against the datapath's in vmtest/agent/roles).
const (
	Ingress Direction = 1
	Egress  Direction = 2
)

// String returns "ingress" or "egress".
func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// MarshalText implements encoding.TextMarshaler.
func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Level is the lookup level at which a policy decision was made.
type Level uint8

// Lookup levels, in the datapath's lookup order, and the two outcomes
// without a matching entry.
const (
	// LevelEnforcementOff: no policy selects the endpoint in this
	// direction, so everything is allowed.
	LevelEnforcementOff Level = iota
	// LevelL3L4 matched {identity, port, proto}.
	LevelL3L4
	// LevelL4Only matched {0, port, proto}.
	LevelL4Only
	// LevelL3Only matched {identity, 0, 0}.
	LevelL3Only
	// LevelAllowAll matched {0, 0, 0}.
	LevelAllowAll
	// LevelDefaultDeny: enforcement is on and no entry matched.
	LevelDefaultDeny
)

// String names the level: "L3L4", "L4-only", "L3-only", "allow-all",
// "enforcement off" or "default deny".
func (l Level) String() string {
	switch l {
	case LevelL3L4:
		return "L3L4"
	case LevelL4Only:
		return "L4-only"
	case LevelL3Only:
		return "L3-only"
	case LevelAllowAll:
		return "allow-all"
	case LevelDefaultDeny:
		return "default deny"
	}
	return "enforcement off"
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// PolicyKey is the key of a policy map entry of one endpoint.
type PolicyKey struct {
	// Direction is ingress or egress.
	Direction Direction `json:"direction"`
	// RemoteIdentity is the peer's identity; 0 matches any peer.
	RemoteIdentity Identity `json:"remote_identity"`
	// Port is the destination port; 0 matches any port.
	Port uint16 `json:"port"`
	// Proto is the IP protocol; 0 matches any (only together with Port 0).
	Proto Protocol `json:"proto"`
}

// Level returns the lookup level the key is found at.
func (k PolicyKey) Level() Level {
	switch {
	case k.RemoteIdentity != 0 && k.Port != 0:
		return LevelL3L4
	case k.Port != 0:
		return LevelL4Only
	case k.RemoteIdentity != 0:
		return LevelL3Only
	}
	return LevelAllowAll
}

// String renders the key like "{identity 1234, port 8080, tcp}".
func (k PolicyKey) String() string {
	return fmt.Sprintf("{identity %d, port %d, %s}", uint32(k.RemoteIdentity), k.Port, k.Proto)
}

// PolicyEntry is an allow entry of an endpoint's policy map, with the rules
// that produced it.
type PolicyEntry struct {
	PolicyKey
	// Rules are the rules that produced the entry (for explanations).
	Rules []RuleRef `json:"rules"`
	// ProxyPort, when not 0, redirects the entry's flows to the node's L7
	// proxy listening on that port (the entry's own port: an L7 rule
	// names it in the entry's direction).
	ProxyPort uint16 `json:"proxy_port,omitempty"`
}

// RuleRef names one rule of one policy.
type RuleRef struct {
	// Policy is the policy's name.
	Policy string `json:"policy"`
	// Direction is the rule's section.
	Direction Direction `json:"direction"`
	// Index is the rule's index in its section.
	Index int `json:"index"`
	// Pos is where the rule is written.
	Pos Pos `json:"pos"`
}

// String renders the reference like `policy "allow-fe" ingress[0] (line 12)`.
func (r RuleRef) String() string {
	return fmt.Sprintf("policy %q %s[%d] (line %d)", r.Policy, r.Direction, r.Index, r.Pos.Line)
}

// EndpointPolicy is the compiled policy of one pod: what the datapath's
// policy map for the endpoint holds, plus the enforcement flags.
type EndpointPolicy struct {
	// Pod is the pod's name.
	Pod string
	// EndpointID is the pod's endpoint ID.
	EndpointID uint16
	// Identity is the pod's identity.
	Identity Identity
	// IngressEnforced is true when a policy with ingress rules selects the pod.
	IngressEnforced bool
	// EgressEnforced is true when a policy with egress rules selects the pod.
	EgressEnforced bool
	// Entries are the allow entries, sorted by key.
	Entries []PolicyEntry
	// Selected are the policies selecting the pod, in file order.
	Selected []string
	// L7Ports are the ports with L7 rules, per direction, in file order.
	L7Ports []L7Port
}

// Enforced reports whether enforcement is on in direction d.
func (e *EndpointPolicy) Enforced(d Direction) bool {
	if d == Egress {
		return e.EgressEnforced
	}
	return e.IngressEnforced
}

// Decision is the outcome of a policy lookup.
type Decision struct {
	// Allowed is the verdict.
	Allowed bool `json:"allowed"`
	// Level is where the decision was made.
	Level Level `json:"level"`
	// Key is the key of the matching entry (nil unless an entry matched).
	Key *PolicyKey `json:"key,omitempty"`
	// Rules are the rules behind the matching entry.
	Rules []RuleRef `json:"rules,omitempty"`
	// Tried are the keys looked up, in order, up to the match.
	Tried []PolicyKey `json:"tried,omitempty"`
	// ProxyPort is the matching entry's: not 0 when the flow is
	// redirected to the L7 proxy.
	ProxyPort uint16 `json:"proxy_port,omitempty"`
}

// Lookup decides a packet the way the datapath does: with enforcement off
// in direction d everything is allowed; otherwise the keys {remote, dport,
// proto}, {0, dport, proto}, {remote, 0, 0} and {0, 0, 0} are tried in this
// order and the first present entry allows; none present means drop
// ("Policy denied"). remote is the peer's identity: the source's at
// ingress, the destination's at egress.
func (e *EndpointPolicy) Lookup(d Direction, remote Identity, dport uint16, proto Protocol) Decision {
	if !e.Enforced(d) {
		return Decision{Allowed: true, Level: LevelEnforcementOff}
	}
	keys := []PolicyKey{
		{d, remote, dport, proto},
		{d, 0, dport, proto},
		{d, remote, 0, 0},
		{d, 0, 0, 0},
	}
	levels := []Level{LevelL3L4, LevelL4Only, LevelL3Only, LevelAllowAll}
	var dec Decision
	for i, k := range keys {
		dec.Tried = append(dec.Tried, k)
		if ent := e.find(k); ent != nil {
			dec.Allowed, dec.Level, dec.Key, dec.Rules, dec.ProxyPort = true, levels[i], &k, ent.Rules, ent.ProxyPort
			return dec
		}
	}
	dec.Level = LevelDefaultDeny
	return dec
}

func (e *EndpointPolicy) find(k PolicyKey) *PolicyEntry {
	i := sort.Search(len(e.Entries), func(i int) bool { return !keyLess(e.Entries[i].PolicyKey, k) })
	if i < len(e.Entries) && e.Entries[i].PolicyKey == k {
		return &e.Entries[i]
	}
	return nil
}

func keyLess(a, b PolicyKey) bool {
	if a.Direction != b.Direction {
		return a.Direction < b.Direction
	}
	if a.RemoteIdentity != b.RemoteIdentity {
		return a.RemoteIdentity < b.RemoteIdentity
	}
	if a.Port != b.Port {
		return a.Port < b.Port
	}
	return a.Proto < b.Proto
}

// PolicyEntries returns the allow entries of the named pod's policy map
// (see EndpointPolicy).
func (t *Topology) PolicyEntries(pod string) ([]PolicyEntry, error) {
	ep, err := t.EndpointPolicy(pod)
	if err != nil {
		return nil, err
	}
	return ep.Entries, nil
}

// EndpointPolicy compiles the policies selecting the named pod, following
// Cilium's semantics:
//
//   - a policy whose endpointSelector matches the pod and that has at least
//     one ingress (egress) rule turns ingress (egress) enforcement on;
//   - a rule with peers and toPorts gives an entry per peer identity and
//     port (L3L4); toPorts without peers gives identity 0 (L4-only); peers
//     without toPorts give port 0, proto 0 (L3-only); protocol ANY expands
//     to TCP and UDP;
//   - a peer selector {} (e.g. fromEndpoints: [{}]) and the entity "all"
//     are the wildcard identity 0, so with no toPorts they give the
//     allow-all entry {0, 0, 0};
//   - other peer selectors give the identities of the pods they match;
//     entities give reserved identities (host, world, remote-node, health,
//     kube-apiserver);
//   - an empty rule {} selects no peer: it allows nothing but still turns
//     enforcement on (Cilium's idiom for default deny);
//   - a TCP port of a toPorts entry with L7 rules is an L7 port of the
//     rule's direction: every entry of that direction on the port (from
//     any rule) redirects to the proxy (ProxyPort), which decides each
//     request by the rules naming the port (L7Port.Decide).
func (t *Topology) EndpointPolicy(pod string) (*EndpointPolicy, error) {
	p := t.pods[pod]
	if p == nil {
		return nil, fmt.Errorf("policy of %q: %w", pod, ErrUnknownPod)
	}
	ep := &EndpointPolicy{Pod: p.Name, EndpointID: p.EndpointID, Identity: p.Identity}
	entries := map[PolicyKey]*PolicyEntry{}
	var selected []*Policy
	for _, pol := range t.Policies {
		if !pol.EndpointSelector.Matches(p.Labels) {
			continue
		}
		selected = append(selected, pol)
		ep.Selected = append(ep.Selected, pol.Name)
		if len(pol.Ingress) > 0 {
			ep.IngressEnforced = true
		}
		if len(pol.Egress) > 0 {
			ep.EgressEnforced = true
		}
		for _, sec := range []struct {
			dir   Direction
			rules []Rule
		}{{Ingress, pol.Ingress}, {Egress, pol.Egress}} {
			for i, r := range sec.rules {
				ref := RuleRef{Policy: pol.Name, Direction: sec.dir, Index: i, Pos: r.Pos}
				for _, k := range t.ruleKeys(sec.dir, r) {
					e := entries[k]
					if e == nil {
						e = &PolicyEntry{PolicyKey: k}
						entries[k] = e
					}
					e.Rules = append(e.Rules, ref)
				}
			}
		}
	}
	ep.L7Ports = t.l7Ports(selected)
	for _, e := range entries {
		if e.Proto == TCP && ep.L7(e.Direction, e.Port) != nil {
			e.ProxyPort = e.Port
		}
		ep.Entries = append(ep.Entries, *e)
	}
	sort.Slice(ep.Entries, func(i, j int) bool { return keyLess(ep.Entries[i].PolicyKey, ep.Entries[j].PolicyKey) })
	return ep, nil
}

// ruleKeys returns the keys one rule produces.
func (t *Topology) ruleKeys(d Direction, r Rule) []PolicyKey {
	hasPeers := len(r.Endpoints) > 0 || len(r.Entities) > 0
	if !hasPeers && len(r.ToPorts) == 0 {
		return nil // {}: enforcement only
	}
	ids := []Identity{IdentityAny}
	if hasPeers {
		ids = t.peerIdentities(r)
	}
	var keys []PolicyKey
	if len(r.ToPorts) == 0 {
		for _, id := range ids {
			keys = append(keys, PolicyKey{Direction: d, RemoteIdentity: id})
		}
		return keys
	}
	for _, pr := range r.ToPorts {
		for _, pp := range pr.Ports {
			protos := []Protocol{pp.Protocol}
			if pp.Protocol == Any {
				protos = []Protocol{TCP, UDP}
			}
			for _, proto := range protos {
				for _, id := range ids {
					keys = append(keys, PolicyKey{Direction: d, RemoteIdentity: id, Port: pp.Port, Proto: proto})
				}
			}
		}
	}
	return keys
}

func (t *Topology) peerIdentities(r Rule) []Identity {
	set := map[Identity]bool{}
	for _, sel := range r.Endpoints {
		if sel.IsWildcard() {
			set[IdentityAny] = true
			continue
		}
		for _, p := range t.Pods {
			if sel.Matches(p.Labels) {
				set[p.Identity] = true
			}
		}
	}
	for _, e := range r.Entities {
		set[entities[e]] = true
	}
	out := make([]Identity, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
