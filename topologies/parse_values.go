package topologies

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
