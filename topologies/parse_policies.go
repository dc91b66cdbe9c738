package topologies

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
		"listener":       "L7 listeners are not modelled",
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
	f, ok := d.fields(n, "toPorts entry", []string{"ports", "rules"}, unsupportedPortRuleKeys)
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
	var portNodes []*yaml.Node
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
		portNodes = append(portNodes, it)
	}
	if rv := f["rules"]; rv != nil {
		pr.Rules = d.l7Rules(rv)
		for i, pp := range pr.Ports {
			if pp.Protocol != TCP && pp.Port != 0 {
				// Cilium's proxy parses HTTP over TCP only.
				d.fail(portNodes[i], "port %d/%s: L7 rules apply to TCP ports only; write protocol: TCP", pp.Port, strings.ToUpper(pp.Protocol.String()))
			}
		}
	}
	return pr
}
