package topologies

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// L7Rules are the application-level rules of one toPorts entry (Cilium's
// "rules"). Only HTTP is modelled: the flows on the entry's ports go
// through the node's proxy, which allows a request when one of HTTP
// matches it and answers any other with 403 "Access denied".
type L7Rules struct {
	// HTTP are the HTTP rules; at least one.
	HTTP []HTTPRule
	// Pos is where the rules are written.
	Pos Pos
}

// HTTPRule allows the HTTP requests it matches: method, path and host are
// regular expressions matched against the whole value (an empty one
// matches anything), and every header must be present (with the value,
// when one is given).
type HTTPRule struct {
	// Method is a regular expression for the request method ("GET",
	// "GET|HEAD").
	Method string `json:"method,omitempty"`
	// Path is a regular expression for the request target as sent (path
	// and query, "/public/.*").
	Path string `json:"path,omitempty"`
	// Host is a regular expression for the Host header.
	Host string `json:"host,omitempty"`
	// Headers are required headers.
	Headers []HeaderMatch `json:"headers,omitempty"`
	// Pos is where the rule is written.
	Pos Pos `json:"pos"`

	method, path, host *regexp.Regexp
}

// HeaderMatch is a required header, written "Name" (present) or
// "Name: value" (present with exactly that value).
type HeaderMatch struct {
	// Name is the header's name.
	Name string `json:"name"`
	// Value is the required value; empty means any value.
	Value string `json:"value,omitempty"`
	// HasValue reports whether a value was given.
	HasValue bool `json:"has_value,omitempty"`
}

// String returns the header as written in the file.
func (h HeaderMatch) String() string {
	if h.HasValue {
		return h.Name + ": " + h.Value
	}
	return h.Name
}

// compileHTTPRegexp compiles a rule's expression anchored at both ends:
// it must match the whole value, as Envoy's matchers (Cilium's proxy) do.
func compileHTTPRegexp(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// compile compiles the rule's expressions; the parser has checked them.
func (r *HTTPRule) compile() error {
	var err error
	if r.method, err = compileHTTPRegexp(r.Method); err != nil {
		return fmt.Errorf("method: %w", err)
	}
	if r.path, err = compileHTTPRegexp(r.Path); err != nil {
		return fmt.Errorf("path: %w", err)
	}
	if r.host, err = compileHTTPRegexp(r.Host); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	return nil
}

// String renders the rule as "GET /public/.*" (with host and headers when
// given; "*" for an empty method or path).
func (r HTTPRule) String() string {
	parts := []string{orStar(r.Method), orStar(r.Path)}
	if r.Host != "" {
		parts = append(parts, "host "+r.Host)
	}
	for _, h := range r.Headers {
		parts = append(parts, "header "+h.String())
	}
	return strings.Join(parts, " ")
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// HTTPRequest is what the L7 rules look at in a request.
type HTTPRequest struct {
	// Method is the request method ("GET").
	Method string `json:"method"`
	// Path is the request target as sent ("/public/a?x=1").
	Path string `json:"path"`
	// Host is the Host header.
	Host string `json:"host,omitempty"`
	// Header holds the other headers.
	Header http.Header `json:"header,omitempty"`
}

// Matches reports whether the rule allows req.
func (r *HTTPRule) Matches(req HTTPRequest) bool {
	for _, x := range []struct {
		re        *regexp.Regexp
		expr, val string
	}{{r.method, r.Method, req.Method}, {r.path, r.Path, req.Path}, {r.host, r.Host, req.Host}} {
		re := x.re
		if re == nil && x.expr != "" {
			// A rule built by hand, not by the parser.
			var err error
			if re, err = compileHTTPRegexp(x.expr); err != nil {
				return false
			}
		}
		if re != nil && !re.MatchString(x.val) {
			return false
		}
	}
	for _, h := range r.Headers {
		vals := req.Header.Values(h.Name)
		if len(vals) == 0 {
			return false
		}
		if h.HasValue && !contains(vals, h.Value) {
			return false
		}
	}
	return true
}

// L7Port is the L7 policy of one endpoint on one TCP port in one
// direction: every flow the policy map admits on the port is redirected
// to the node's proxy, which decides each request with Decide.
type L7Port struct {
	// Direction is ingress (requests to the endpoint) or egress (requests
	// it sends).
	Direction Direction `json:"direction"`
	// Port is the destination port, also the proxy's listening port.
	Port uint16 `json:"port"`
	// Allows are the rules of the endpoint's policies on this port, in
	// file order.
	Allows []L7Allow `json:"allows"`
}

// L7Allow is one rule's allowance on an L7 port: the peers it selects and
// the requests it allows them.
type L7Allow struct {
	// Rule is the rule.
	Rule RuleRef `json:"rule"`
	// PortRule is the index of the toPorts entry in the rule.
	PortRule int `json:"port_rule"`
	// Peers are the identities the rule selects; IdentityAny is any peer.
	Peers []Identity `json:"peers"`
	// HTTP are the entry's HTTP rules; none means every request (an L4
	// rule on a port other rules give HTTP rules).
	HTTP []HTTPRule `json:"http,omitempty"`
}

// selects reports whether the allowance applies to remote.
func (a L7Allow) selects(remote Identity) bool {
	for _, id := range a.Peers {
		if id == IdentityAny || id == remote {
			return true
		}
	}
	return false
}

// L7Decision is what the proxy does with one request.
type L7Decision struct {
	// Allowed is the verdict: forwarded to the destination, or answered
	// with 403 "Access denied".
	Allowed bool `json:"allowed"`
	// Rule says which rule allowed the request, or for a denial which
	// port's rules it failed ("port 8080/TCP: no HTTP rule of ... matches").
	Rule string `json:"rule"`
	// Match is the rule that allowed the request (nil when denied).
	Match *L7Match `json:"match,omitempty"`
}

// L7Match names the rule that allowed a request.
type L7Match struct {
	// Rule is the policy rule.
	Rule RuleRef `json:"rule"`
	// PortRule is the toPorts entry's index.
	PortRule int `json:"port_rule"`
	// HTTP is the HTTP rule's index in the entry; -1 when the rule has no
	// HTTP rules (every request allowed).
	HTTP int `json:"http"`
}

// String renders the match like `policy "l7" ingress[0] toPorts[0]
// http[1]: GET /public/.*`. It names the rule by its place in the
// policies, not by its line, so that it reads the same wherever the
// topology was parsed from (the agents parse an encoded copy).
func (m L7Match) String(a *L7Allow) string {
	if m.HTTP < 0 {
		return a.String() + ": no HTTP rules, any request"
	}
	return fmt.Sprintf("%s http[%d]: %s", a.String(), m.HTTP, a.HTTP[m.HTTP])
}

// String names the allowance's toPorts entry like `policy "l7"
// ingress[0] toPorts[0]`.
func (a *L7Allow) String() string {
	return fmt.Sprintf("policy %q %s[%d] toPorts[%d]", a.Rule.Policy, a.Rule.Direction, a.Rule.Index, a.PortRule)
}

// lineString is String with the rule's line ("... (line 10)").
func (a *L7Allow) lineString() string {
	return fmt.Sprintf("%s (line %d)", a.String(), a.Rule.Pos.Line)
}

// httpString names HTTP rule i with its line like `policy "l7" ingress[0]
// toPorts[0] http[1] (line 12): GET /public/.*`.
func (a *L7Allow) httpString(i int) string {
	h := a.HTTP[i]
	return fmt.Sprintf("%s http[%d] (line %d): %s", a.String(), i, h.Pos.Line, h)
}

// Decide decides a request from (at ingress) or to (at egress) the peer
// remote, as the proxy does: a rule selecting remote without HTTP rules
// allows every request; otherwise the first HTTP rule (in file order) of
// the rules selecting remote that matches allows it; with none, the
// request is denied. A peer no rule selects is denied too (the policy map
// drops its packets before any request).
func (p *L7Port) Decide(remote Identity, req HTTPRequest) L7Decision {
	var applying []string
	for i := range p.Allows {
		a := &p.Allows[i]
		if !a.selects(remote) {
			continue
		}
		applying = append(applying, a.String())
		if len(a.HTTP) == 0 {
			m := L7Match{Rule: a.Rule, PortRule: a.PortRule, HTTP: -1}
			return L7Decision{Allowed: true, Rule: m.String(a), Match: &m}
		}
	}
	for i := range p.Allows {
		a := &p.Allows[i]
		if !a.selects(remote) {
			continue
		}
		for j := range a.HTTP {
			if a.HTTP[j].Matches(req) {
				m := L7Match{Rule: a.Rule, PortRule: a.PortRule, HTTP: j}
				return L7Decision{Allowed: true, Rule: m.String(a), Match: &m}
			}
		}
	}
	if len(applying) == 0 {
		return L7Decision{Rule: fmt.Sprintf("port %d/TCP: no rule selects identity %d", p.Port, uint32(remote))}
	}
	return L7Decision{Rule: fmt.Sprintf("port %d/TCP: no HTTP rule of %s matches", p.Port, strings.Join(applying, ", "))}
}

// L7 returns the endpoint's L7 policy on port in direction d, or nil when
// no L7 rule applies there.
func (e *EndpointPolicy) L7(d Direction, port uint16) *L7Port {
	for i := range e.L7Ports {
		if e.L7Ports[i].Direction == d && e.L7Ports[i].Port == port {
			return &e.L7Ports[i]
		}
	}
	return nil
}

// l7Ports collects the L7 ports of the policies selecting a pod: a TCP
// port of a toPorts entry with rules is an L7 port of the rule's
// direction, and every rule of that direction naming the port (with or
// without rules) is one of its allowances.
func (t *Topology) l7Ports(sel []*Policy) []L7Port {
	type key struct {
		d    Direction
		port uint16
	}
	l7 := map[key]bool{}
	var order []key
	each := func(fn func(pol *Policy, dir Direction, i int, r Rule, pi int, pr PortRule)) {
		for _, pol := range sel {
			for _, sec := range []struct {
				dir   Direction
				rules []Rule
			}{{Ingress, pol.Ingress}, {Egress, pol.Egress}} {
				for i, r := range sec.rules {
					for pi, pr := range r.ToPorts {
						fn(pol, sec.dir, i, r, pi, pr)
					}
				}
			}
		}
	}
	each(func(_ *Policy, dir Direction, _ int, _ Rule, _ int, pr PortRule) {
		if pr.Rules == nil {
			return
		}
		for _, pp := range pr.Ports {
			k := key{dir, pp.Port}
			if !l7[k] {
				l7[k] = true
				order = append(order, k)
			}
		}
	})
	if len(order) == 0 {
		return nil
	}
	ports := make([]L7Port, len(order))
	index := map[key]int{}
	for i, k := range order {
		ports[i] = L7Port{Direction: k.d, Port: k.port}
		index[k] = i
	}
	each(func(pol *Policy, dir Direction, i int, r Rule, pi int, pr PortRule) {
		for _, pp := range pr.Ports {
			if pp.Protocol == UDP {
				continue
			}
			k := key{dir, pp.Port}
			if !l7[k] {
				continue
			}
			peers := []Identity{IdentityAny}
			if len(r.Endpoints) > 0 || len(r.Entities) > 0 {
				peers = t.peerIdentities(r)
			}
			a := L7Allow{Rule: RuleRef{Policy: pol.Name, Direction: dir, Index: i, Pos: r.Pos}, PortRule: pi, Peers: peers}
			if pr.Rules != nil {
				a.HTTP = pr.Rules.HTTP
			}
			ports[index[k]].Allows = append(ports[index[k]].Allows, a)
		}
	})
	return ports
}
