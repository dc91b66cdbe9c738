package topologies

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaults for omitted fields.
const (
	DefaultKernel = "6.1"
	DefaultMode   = DirectRouting
	DefaultBond   = BondBalanceXOR
)

// Load reads, parses and validates the topology file at path.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a topology. filename is used in messages only.
// On failure the error joins one *Error per problem (each matching
// ErrInvalid), in file order.
func Parse(filename string, data []byte) (top *Topology, err error) {
	defer func() {
		// The YAML library and our walk are expected not to panic; if
		// they do, the input is still only a bad topology.
		if r := recover(); r != nil {
			top = nil
			err = &Error{File: filename, Msg: fmt.Sprintf("internal error while parsing: %v", r)}
		}
	}()
	root, err := decodeDocument(filename, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: filename}
	d.checkNoAliases(root)
	if len(d.errs) > 0 {
		return nil, d.result()
	}
	t := d.topology(root)
	if len(d.errs) > 0 {
		return nil, d.result()
	}
	t.File = filename
	v := &validator{decoder: d, t: t}
	v.validate()
	if len(d.errs) > 0 {
		return nil, d.result()
	}
	t.Warnings = d.warns
	return t, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

var yamlParserErrors = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

func decodeDocument(filename string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: filename, Line: 1, Col: 1, Msg: "empty topology"}
		}
		e := &Error{File: filename, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Col = 1
			e.Msg = m[2]
		}
		// yaml.v3 reports parser (as opposed to scanner) errors with a
		// 0-based line; its parser messages are disjoint from the
		// scanner's.
		if yamlParserErrors[e.Msg] {
			e.Line++
		}
		if e.Line == 0 {
			e.Line, e.Col = 1, 1
		}
		return nil, e
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: filename, Line: extra.Line, Col: extra.Column, Msg: "more than one YAML document; a topology is one document"}
	} else if !errors.Is(err, io.EOF) {
		return nil, &Error{File: filename, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: filename, Line: 1, Col: 1, Msg: "empty topology"}
	}
	return doc.Content[0], nil
}

type decoder struct {
	file  string
	errs  []error
	warns []Warning
}

func (d *decoder) failAt(p Pos, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) fail(n *yaml.Node, format string, args ...any) { d.failAt(pos(n), format, args...) }

func (d *decoder) warnAt(p Pos, format string, args ...any) {
	d.warns = append(d.warns, Warning{File: d.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) result() error {
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i].(*Error), d.errs[j].(*Error)
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	if len(d.errs) == 1 {
		return d.errs[0]
	}
	return errors.Join(d.errs...)
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func (d *decoder) checkNoAliases(n *yaml.Node) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.fail(n, "YAML anchors and aliases are not supported in topologies")
		return
	}
	for _, c := range n.Content {
		d.checkNoAliases(c)
	}
}

// fields checks that n is a mapping whose keys are all known and unique and
// returns the value node of each key. unsupported maps Cilium keys hoplab
// does not model to the reason.
func (d *decoder) fields(n *yaml.Node, what string, known []string, unsupported map[string]string) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, "%s: expected a mapping, got %s", what, kindName(n))
		return nil, false
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, "%s: keys must be plain strings", what)
			continue
		}
		key := k.Value
		if _, dup := out[key]; dup {
			d.fail(k, "%s: duplicate key %q", what, key)
			continue
		}
		if reason, ok := unsupported[key]; ok {
			d.fail(k, "%s: %q is not supported by hoplab: %s", what, key, reason)
			continue
		}
		if !contains(known, key) {
			d.fail(k, "%s: unknown key %q (known keys: %s)", what, key, strings.Join(known, ", "))
			continue
		}
		out[key] = v
	}
	return out, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// scalar returns n's text; it reports an error when n is not a non-empty
// scalar.
func (d *decoder) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, "%s: expected a single value, got %s", what, kindName(n))
		return "", false
	}
	if n.Tag == "!!null" || n.Value == "" {
		d.fail(n, "%s: value is empty", what)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) list(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "%s: expected a list, got %s", what, kindName(n))
		return nil, false
	}
	return n.Content, true
}

func (d *decoder) require(f map[string]*yaml.Node, n *yaml.Node, what string, keys ...string) bool {
	ok := true
	for _, k := range keys {
		if _, has := f[k]; !has {
			d.fail(n, "%s: missing required key %q", what, k)
			ok = false
		}
	}
	return ok
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func (d *decoder) name(n *yaml.Node, what string) string {
	s, ok := d.scalar(n, what)
	if !ok {
		return ""
	}
	if len(s) > 63 || !nameRE.MatchString(s) {
		d.fail(n, "%s: %q is not a valid name (lowercase letters, digits and '-', at most 63, starting and ending alphanumeric)", what, s)
		return ""
	}
	return s
}

func (d *decoder) asn(n *yaml.Node, what string) uint32 {
	s, ok := d.scalar(n, what)
	if !ok {
		return 0
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		d.fail(n, "%s: %q is not an ASN (a number 1..4294967294)", what, s)
		return 0
	}
	switch v {
	case 0, 4294967295:
		d.fail(n, "%s: ASN %d is reserved", what, v)
		return 0
	case 23456:
		d.fail(n, "%s: ASN 23456 is AS_TRANS and cannot be used", what)
		return 0
	case 65535:
		d.fail(n, "%s: ASN 65535 is reserved", what)
		return 0
	}
	return uint32(v)
}

func (d *decoder) addr(n *yaml.Node, what string) netip.Addr {
	s, ok := d.scalar(n, what)
	if !ok {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		d.fail(n, "%s: %q is not an IP address", what, s)
		return netip.Addr{}
	}
	if !a.Is4() {
		d.fail(n, "%s: %s: only IPv4 is supported", what, s)
		return netip.Addr{}
	}
	return a
}

func (d *decoder) prefix(n *yaml.Node, what string, wantMasked bool) netip.Prefix {
	s, ok := d.scalar(n, what)
	if !ok {
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		d.fail(n, "%s: %q is not an address/prefix-length (like 10.1.1.0/24)", what, s)
		return netip.Prefix{}
	}
	if !p.Addr().Is4() {
		d.fail(n, "%s: %s: only IPv4 is supported", what, s)
		return netip.Prefix{}
	}
	if wantMasked && p != p.Masked() {
		d.fail(n, "%s: %s has host bits set (did you mean %s?)", what, s, p.Masked())
		return netip.Prefix{}
	}
	if p.Bits() > 30 {
		d.fail(n, "%s: %s is too small (at most /30)", what, s)
		return netip.Prefix{}
	}
	if p.Bits() < 8 {
		d.fail(n, "%s: %s is too large (at least /8)", what, s)
		return netip.Prefix{}
	}
	return p
}

func (d *decoder) port(n *yaml.Node, what string) uint16 {
	s, ok := d.scalar(n, what)
	if !ok {
		return 0
	}
	return d.portText(n, what, s)
}

func (d *decoder) portText(n *yaml.Node, what, s string) uint16 {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 {
		d.fail(n, "%s: %q is not a port (1..65535)", what, s)
		return 0
	}
	return uint16(v)
}

func (d *decoder) topology(n *yaml.Node) *Topology {
	f, ok := d.fields(n, "topology", []string{"name", "kernel", "mode", "router", "nodes", "pods", "services", "policies"}, nil)
	if !ok {
		return nil
	}
	t := &Topology{Kernel: DefaultKernel, Mode: DefaultMode}
	d.require(f, n, "topology", "name", "router", "nodes")
	if v := f["name"]; v != nil {
		t.Name = d.name(v, "name")
	}
	if v := f["kernel"]; v != nil {
		if s, ok := d.scalar(v, "kernel"); ok {
			if !kernelRE.MatchString(s) {
				d.fail(v, "kernel: %q is not a kernel series or version (like \"6.1\" or \"6.1.192\")", s)
			}
			t.Kernel = s
		}
	}
	if v := f["mode"]; v != nil {
		if s, ok := d.scalar(v, "mode"); ok {
			switch Mode(s) {
			case DirectRouting, Tunnel:
				t.Mode = Mode(s)
			default:
				d.fail(v, "mode: %q is not a mode (want direct-routing or tunnel)", s)
			}
		}
	}
	if v := f["router"]; v != nil {
		t.Router = d.router(v)
	}
	if v := f["nodes"]; v != nil {
		items, _ := d.list(v, "nodes")
		for _, it := range items {
			if nd := d.node(it); nd != nil {
				t.Nodes = append(t.Nodes, nd)
			}
		}
		if len(items) == 0 {
			d.fail(v, "nodes: at least one node is required")
		}
	}
	if v := f["pods"]; v != nil {
		items, _ := d.list(v, "pods")
		for _, it := range items {
			if p := d.pod(it); p != nil {
				t.Pods = append(t.Pods, p)
			}
		}
	}
	if v := f["services"]; v != nil {
		items, _ := d.list(v, "services")
		for _, it := range items {
			if s := d.service(it); s != nil {
				t.Services = append(t.Services, s)
			}
		}
	}
	if v := f["policies"]; v != nil {
		items, _ := d.list(v, "policies")
		for i, it := range items {
			if p := d.policy(it, i); p != nil {
				t.Policies = append(t.Policies, p)
			}
		}
	}
	return t
}

var kernelRE = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)

func (d *decoder) router(n *yaml.Node) Router {
	r := Router{Pos: pos(n)}
	f, ok := d.fields(n, "router", []string{"name", "asn"}, nil)
	if !ok {
		return r
	}
	d.require(f, n, "router", "name", "asn")
	if v := f["name"]; v != nil {
		r.Name = d.name(v, "router name")
	}
	if v := f["asn"]; v != nil {
		r.ASN = d.asn(v, "router asn")
	}
	return r
}

func (d *decoder) node(n *yaml.Node) *Node {
	f, ok := d.fields(n, "node", []string{"name", "asn", "podCIDR", "uplink"}, nil)
	if !ok {
		return nil
	}
	nd := &Node{Pos: pos(n)}
	d.require(f, n, "node", "name", "asn", "podCIDR", "uplink")
	if v := f["name"]; v != nil {
		nd.Name = d.name(v, "node name")
	}
	if v := f["asn"]; v != nil {
		nd.ASN = d.asn(v, "node asn")
	}
	if v := f["podCIDR"]; v != nil {
		nd.PodCIDR = d.prefix(v, "node podCIDR", true)
	}
	if v := f["uplink"]; v != nil {
		nd.Uplink = d.uplink(v)
	}
	return nd
}

func (d *decoder) uplink(n *yaml.Node) Uplink {
	u := Uplink{Bond: DefaultBond}
	f, ok := d.fields(n, "uplink", []string{"address", "gateway", "bond"}, nil)
	if !ok {
		return u
	}
	d.require(f, n, "uplink", "address", "gateway")
	if v := f["address"]; v != nil {
		u.Address = d.prefix(v, "uplink address", false)
	}
	if v := f["gateway"]; v != nil {
		u.Gateway = d.addr(v, "uplink gateway")
	}
	if v := f["bond"]; v != nil {
		if s, ok := d.scalar(v, "uplink bond"); ok {
			switch BondMode(s) {
			case BondActiveBackup, BondBalanceXOR, Bond8023AD:
				u.Bond = BondMode(s)
			default:
				d.fail(v, "uplink bond: %q is not a bonding mode (want active-backup, balance-xor or 802.3ad)", s)
			}
		}
	}
	return u
}

func (d *decoder) pod(n *yaml.Node) *Pod {
	f, ok := d.fields(n, "pod", []string{"name", "node", "ip", "mac", "labels", "listen"}, nil)
	if !ok {
		return nil
	}
	p := &Pod{Pos: pos(n), Labels: Labels{}}
	d.require(f, n, "pod", "name", "node", "ip")
	if v := f["name"]; v != nil {
		p.Name = d.name(v, "pod name")
	}
	if v := f["node"]; v != nil {
		p.Node, _ = d.scalar(v, "pod node")
	}
	if v := f["ip"]; v != nil {
		p.IP = d.addr(v, "pod ip")
	}
	if v := f["mac"]; v != nil {
		if s, ok := d.scalar(v, "pod mac"); ok {
			p.MAC, ok = d.mac(v, s)
			p.MACPinned = ok
		}
	}
	if v := f["labels"]; v != nil {
		p.Labels = d.labels(v, "pod labels", false)
	}
	if v := f["listen"]; v != nil {
		items, _ := d.list(v, "pod listen")
		seen := map[string]bool{}
		for _, it := range items {
			s, ok := d.scalar(it, "pod listen")
			if !ok {
				continue
			}
			l, ok := d.listener(it, s)
			if !ok {
				continue
			}
			key := fmt.Sprintf("%s/%d", l.Protocol, l.Port)
			if seen[key] {
				d.fail(it, "pod listen: %s/%d is listed twice", l.Protocol, l.Port)
				continue
			}
			seen[key] = true
			p.Listen = append(p.Listen, l)
		}
	}
	return p
}

func (d *decoder) mac(n *yaml.Node, s string) (MAC, bool) {
	var m MAC
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		d.fail(n, "pod mac: %q is not a MAC address (like 0a:00:00:00:00:01)", s)
		return m, false
	}
	for i, part := range parts {
		b, err := strconv.ParseUint(part, 16, 8)
		if err != nil || len(part) != 2 {
			d.fail(n, "pod mac: %q is not a MAC address (like 0a:00:00:00:00:01)", s)
			return m, false
		}
		m[i] = byte(b)
	}
	if m[0]&1 != 0 {
		d.fail(n, "pod mac: %s is a multicast address; a pod needs a unicast MAC", s)
		return m, false
	}
	if m.IsZero() {
		d.fail(n, "pod mac: %s is the zero address", s)
		return m, false
	}
	return m, true
}

func (d *decoder) listener(n *yaml.Node, s string) (Listener, bool) {
	kind, port, ok := strings.Cut(s, "/")
	if !ok {
		d.fail(n, "pod listen: %q is not PROTO/PORT (like \"tcp/8080\", \"udp/53\" or \"http/80\")", s)
		return Listener{}, false
	}
	l := Listener{Kind: strings.ToLower(kind)}
	switch l.Kind {
	case "tcp", "http":
		l.Protocol = TCP
	case "udp":
		l.Protocol = UDP
	default:
		d.fail(n, "pod listen: %q: unknown protocol %q (want tcp, udp or http)", s, kind)
		return Listener{}, false
	}
	l.Port = d.portText(n, "pod listen", port)
	return l, l.Port != 0
}

var (
	labelKeyRE   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
)

// labels parses a label map. In selectors a "k8s:" or "any:" source prefix
// is accepted and dropped.
func (d *decoder) labels(n *yaml.Node, what string, selector bool) Labels {
	out := Labels{}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return out
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, "%s: expected a mapping of label keys to values, got %s", what, kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			d.fail(k, "%s: labels must be key: value strings", what)
			continue
		}
		key := k.Value
		if selector {
			key = strings.TrimPrefix(strings.TrimPrefix(key, "k8s:"), "any:")
		}
		if len(key) > 253 || !labelKeyRE.MatchString(key) {
			d.fail(k, "%s: %q is not a valid label key", what, k.Value)
			continue
		}
		val := v.Value
		if v.Tag == "!!null" {
			val = ""
		}
		if len(val) > 63 || !labelValueRE.MatchString(val) {
			d.fail(v, "%s: %q is not a valid label value", what, val)
			continue
		}
		if _, dup := out[key]; dup {
			d.fail(k, "%s: duplicate label %q", what, key)
			continue
		}
		out[key] = val
	}
	return out
}

func (d *decoder) service(n *yaml.Node) *Service {
	f, ok := d.fields(n, "service", []string{"name", "vip", "port", "protocol", "nodePort", "backends"}, nil)
	if !ok {
		return nil
	}
	s := &Service{Pos: pos(n), Protocol: TCP}
	d.require(f, n, "service", "name", "vip", "port")
	if v := f["name"]; v != nil {
		s.Name = d.name(v, "service name")
	}
	if v := f["vip"]; v != nil {
		s.VIP = d.addr(v, "service vip")
	}
	if v := f["port"]; v != nil {
		s.Port = d.port(v, "service port")
	}
	if v := f["protocol"]; v != nil {
		if txt, ok := d.scalar(v, "service protocol"); ok {
			switch p, _ := ParseProtocol(txt); p {
			case TCP, UDP:
				s.Protocol = p
			default:
				d.fail(v, "service protocol: %q is not tcp or udp", txt)
			}
		}
	}
	if v := f["nodePort"]; v != nil {
		s.NodePort = d.port(v, "service nodePort")
		if s.NodePort != 0 && (s.NodePort < 30000 || s.NodePort > 32767) {
			d.fail(v, "service nodePort: %d is outside the NodePort range 30000..32767", s.NodePort)
		}
	}
	if v := f["backends"]; v != nil {
		items, _ := d.list(v, "service backends")
		for _, it := range items {
			txt, ok := d.scalar(it, "service backend")
			if !ok {
				continue
			}
			podName, port, ok := strings.Cut(txt, ":")
			if !ok || podName == "" {
				d.fail(it, "service backend: %q is not POD:PORT (like \"pod4:8080\")", txt)
				continue
			}
			b := Backend{Pod: podName, Pos: pos(it)}
			if b.Port = d.portText(it, "service backend "+strconv.Quote(txt), port); b.Port != 0 {
				s.Backends = append(s.Backends, b)
			}
		}
	}
	return s
}

var (
	unsupportedPolicyKeys = map[string]string{
		"ingressDeny":       "deny rules are not modelled by the datapath",
		"egressDeny":        "deny rules are not modelled by the datapath",
		"enableDefaultDeny": "default deny follows from the presence of ingress/egress rules",
		"nodeSelector":      "host policies are not modelled",
		"labels":            "policy labels are not used",
	}
	unsupportedSelectorKeys = map[string]string{
		"matchExpressions": "use matchLabels",
	}
	unsupportedRuleKeys = map[string]string{
		"fromCIDR": "CIDR rules are not modelled", "fromCIDRSet": "CIDR rules are not modelled",
		"toCIDR": "CIDR rules are not modelled", "toCIDRSet": "CIDR rules are not modelled",
		"fromRequires": "requires rules are not modelled", "toRequires": "requires rules are not modelled",
		"fromGroups": "groups are not modelled", "toGroups": "groups are not modelled",
		"fromNodes": "node selectors are not modelled", "toNodes": "node selectors are not modelled",
		"toServices": "use toEndpoints with the backends' labels", "toFQDNs": "DNS rules are not modelled",
		"icmps":          "ICMP rules are not modelled (ICMP is allowed by L3-only and allow-all entries)",
		"authentication": "mutual authentication is not modelled",
	}
	unsupportedPortRuleKeys = map[string]string{
		"rules": "L7 rules are not modelled", "listener": "L7 listeners are not modelled",
		"originatingTLS": "TLS is not modelled", "terminatingTLS": "TLS is not modelled",
		"serverNames": "TLS SNI is not modelled",
	}
	unsupportedPortKeys = map[string]string{
		"endPort": "port ranges have no datapath encoding; list the ports",
	}
)

func (d *decoder) policy(n *yaml.Node, index int) *Policy {
	f, ok := d.fields(n, "policy", []string{"name", "description", "endpointSelector", "ingress", "egress"}, unsupportedPolicyKeys)
	if !ok {
		return nil
	}
	p := &Policy{Pos: pos(n), Name: fmt.Sprintf("policies[%d]", index)}
	d.require(f, n, "policy", "endpointSelector")
	if v := f["name"]; v != nil {
		p.Name = d.name(v, "policy name")
	}
	if v := f["description"]; v != nil {
		if v.Kind != yaml.ScalarNode {
			d.fail(v, "policy description: expected text, got %s", kindName(v))
		}
		p.Description = v.Value
	}
	if v := f["endpointSelector"]; v != nil {
		p.EndpointSelector = d.selector(v, "endpointSelector")
	}
	for _, dir := range []struct {
		key, peers, entities string
		out                  *[]Rule
	}{
		{"ingress", "fromEndpoints", "fromEntities", &p.Ingress},
		{"egress", "toEndpoints", "toEntities", &p.Egress},
	} {
		v := f[dir.key]
		if v == nil {
			continue
		}
		items, _ := d.list(v, dir.key)
		for _, it := range items {
			*dir.out = append(*dir.out, d.rule(it, dir.key, dir.peers, dir.entities))
		}
	}
	return p
}

func (d *decoder) selector(n *yaml.Node, what string) EndpointSelector {
	s := EndpointSelector{MatchLabels: Labels{}}
	f, ok := d.fields(n, what, []string{"matchLabels"}, unsupportedSelectorKeys)
	if !ok {
		return s
	}
	if v := f["matchLabels"]; v != nil {
		s.MatchLabels = d.labels(v, what+" matchLabels", true)
	}
	return s
}

var entities = map[string]Identity{
	"all":            0,
	"host":           IdentityHost,
	"world":          IdentityWorld,
	"health":         IdentityHealth,
	"remote-node":    IdentityRemoteNode,
	"kube-apiserver": IdentityKubeAPIServer,
}

func (d *decoder) rule(n *yaml.Node, dir, peersKey, entitiesKey string) Rule {
	r := Rule{Pos: pos(n)}
	what := dir + " rule"
	f, ok := d.fields(n, what, []string{peersKey, entitiesKey, "toPorts"}, unsupportedRuleKeys)
	if !ok {
		return r
	}
	if v := f[peersKey]; v != nil {
		items, _ := d.list(v, peersKey)
		for _, it := range items {
			r.Endpoints = append(r.Endpoints, d.selector(it, peersKey))
		}
		if len(items) == 0 {
			d.fail(v, "%s: an empty list selects nothing; omit the key or use [{}] for any peer", peersKey)
		}
	}
	if v := f[entitiesKey]; v != nil {
		items, _ := d.list(v, entitiesKey)
		for _, it := range items {
			s, ok := d.scalar(it, entitiesKey)
			if !ok {
				continue
			}
			if _, known := entities[s]; !known {
				d.fail(it, "%s: %q is not a supported entity (all, host, world, remote-node, health, kube-apiserver)", entitiesKey, s)
				continue
			}
			r.Entities = append(r.Entities, s)
		}
		if len(items) == 0 {
			d.fail(v, "%s: an empty list selects nothing; omit the key", entitiesKey)
		}
	}
	if v := f["toPorts"]; v != nil {
		items, _ := d.list(v, "toPorts")
		for _, it := range items {
			r.ToPorts = append(r.ToPorts, d.portRule(it))
		}
		if len(items) == 0 {
			d.fail(v, "toPorts: an empty list allows no port; omit the key to allow all ports")
		}
	}
	return r
}

func (d *decoder) portRule(n *yaml.Node) PortRule {
	var pr PortRule
	f, ok := d.fields(n, "toPorts entry", []string{"ports"}, unsupportedPortRuleKeys)
	if !ok {
		return pr
	}
	d.require(f, n, "toPorts entry", "ports")
	v := f["ports"]
	if v == nil {
		return pr
	}
	items, _ := d.list(v, "ports")
	if len(items) == 0 {
		d.fail(v, "ports: an empty list allows no port")
	}
	for _, it := range items {
		pf, ok := d.fields(it, "port", []string{"port", "protocol"}, unsupportedPortKeys)
		if !ok {
			continue
		}
		pp := PortProtocol{Protocol: Any}
		if pv := pf["port"]; pv == nil {
			d.fail(it, "port: missing required key \"port\" (a wildcard port has no datapath encoding)")
		} else if s, ok := d.scalar(pv, "port"); ok {
			if _, err := strconv.Atoi(s); err != nil {
				d.fail(pv, "port: %q: named ports are not supported; use a number 1..65535", s)
			} else {
				pp.Port = d.portText(pv, "port", s)
			}
		}
		if pv := pf["protocol"]; pv != nil {
			if s, ok := d.scalar(pv, "protocol"); ok {
				switch p, _ := ParseProtocol(s); {
				case strings.EqualFold(s, "any"), p == TCP, p == UDP:
					pp.Protocol = p
				default:
					d.fail(pv, "protocol: %q is not TCP, UDP or ANY", s)
				}
			}
		}
		pr.Ports = append(pr.Ports, pp)
	}
	return pr
}
