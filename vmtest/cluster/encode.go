package cluster

import (
	"fmt"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/hoplab/hoplab/topologies"
)

// The topology file's shape, for Encode (keys as DESIGN.md writes them).
type (
	yTopology struct {
		Name      string      `yaml:"name"`
		Kernel    string      `yaml:"kernel,omitempty"`
		Mode      string      `yaml:"mode,omitempty"`
		SocketLB  bool        `yaml:"socketLB,omitempty"`
		Router    yRouter     `yaml:"router"`
		Nodes     []yNode     `yaml:"nodes"`
		Pods      []yPod      `yaml:"pods,omitempty"`
		Externals []yExternal `yaml:"externals,omitempty"`
		Services  []yService  `yaml:"services,omitempty"`
		Policies  []yPolicy   `yaml:"policies,omitempty"`
	}
	yRouter struct {
		Name string `yaml:"name"`
		ASN  uint32 `yaml:"asn"`
	}
	yNode struct {
		Name    string  `yaml:"name"`
		ASN     uint32  `yaml:"asn"`
		PodCIDR string  `yaml:"podCIDR"`
		Uplink  yUplink `yaml:"uplink"`
	}
	yUplink struct {
		Address string `yaml:"address"`
		Gateway string `yaml:"gateway"`
		Bond    string `yaml:"bond,omitempty"`
	}
	yPod struct {
		Name   string            `yaml:"name"`
		Node   string            `yaml:"node"`
		IP     string            `yaml:"ip"`
		MAC    string            `yaml:"mac,omitempty"`
		Labels map[string]string `yaml:"labels,omitempty"`
		Listen []string          `yaml:"listen,omitempty"`
	}
	yExternal struct {
		Name string `yaml:"name"`
		IP   string `yaml:"ip"`
	}
	yService struct {
		Name     string   `yaml:"name"`
		VIP      string   `yaml:"vip"`
		Port     uint16   `yaml:"port"`
		Protocol string   `yaml:"protocol,omitempty"`
		NodePort uint16   `yaml:"nodePort,omitempty"`
		Backends []string `yaml:"backends"`
	}
	yPolicy struct {
		Name             string    `yaml:"name,omitempty"`
		Description      string    `yaml:"description,omitempty"`
		EndpointSelector ySelector `yaml:"endpointSelector"`
		Ingress          []yRule   `yaml:"ingress,omitempty"`
		Egress           []yRule   `yaml:"egress,omitempty"`
	}
	ySelector struct {
		MatchLabels map[string]string `yaml:"matchLabels,omitempty"`
	}
	yRule struct {
		FromEndpoints []ySelector `yaml:"fromEndpoints,omitempty"`
		FromEntities  []string    `yaml:"fromEntities,omitempty"`
		ToEndpoints   []ySelector `yaml:"toEndpoints,omitempty"`
		ToEntities    []string    `yaml:"toEntities,omitempty"`
		ToPorts       []yPortRule `yaml:"toPorts,omitempty"`
	}
	yPortRule struct {
		Ports []yPort   `yaml:"ports"`
		Rules *yL7Rules `yaml:"rules,omitempty"`
	}
	yL7Rules struct {
		HTTP []yHTTPRule `yaml:"http"`
	}
	yHTTPRule struct {
		Method  string   `yaml:"method,omitempty"`
		Path    string   `yaml:"path,omitempty"`
		Host    string   `yaml:"host,omitempty"`
		Headers []string `yaml:"headers,omitempty"`
	}
	yPort struct {
		Port     string `yaml:"port"`
		Protocol string `yaml:"protocol,omitempty"`
	}
)

var defaultPolicyName = regexp.MustCompile(`^policies\[(\d+)\]$`)

// Encode writes t in the topology file format, so that topologies.Parse
// gives back the same topology (derived values included: they depend only
// on names). The node agents take the topology as this text; Update
// encodes the changed topology the same way. Positions are not kept.
func Encode(t *topologies.Topology) ([]byte, error) {
	y := yTopology{Name: t.Name, Kernel: t.Kernel, Mode: string(t.Mode), SocketLB: t.SocketLB,
		Router: yRouter{Name: t.Router.Name, ASN: t.Router.ASN}}
	for _, e := range t.Externals {
		y.Externals = append(y.Externals, yExternal{Name: e.Name, IP: e.IP.String()})
	}
	for _, n := range t.Nodes {
		y.Nodes = append(y.Nodes, yNode{Name: n.Name, ASN: n.ASN, PodCIDR: n.PodCIDR.String(),
			Uplink: yUplink{Address: n.Uplink.Address.String(), Gateway: n.Uplink.Gateway.String(), Bond: string(n.Uplink.Bond)}})
	}
	for _, p := range t.Pods {
		yp := yPod{Name: p.Name, Node: p.Node, IP: p.IP.String(), Labels: p.Labels}
		if p.MACPinned {
			yp.MAC = p.MAC.String()
		}
		for _, l := range p.Listen {
			yp.Listen = append(yp.Listen, l.String())
		}
		y.Pods = append(y.Pods, yp)
	}
	for _, s := range t.Services {
		ys := yService{Name: s.Name, VIP: s.VIP.String(), Port: s.Port, Protocol: s.Protocol.String(), NodePort: s.NodePort, Backends: []string{}}
		for _, b := range s.Backends {
			ys.Backends = append(ys.Backends, b.String())
		}
		y.Services = append(y.Services, ys)
	}
	for i, p := range t.Policies {
		yp := yPolicy{Name: p.Name, Description: p.Description, EndpointSelector: selector(p.EndpointSelector)}
		if m := defaultPolicyName.FindStringSubmatch(p.Name); m != nil {
			if m[1] != strconv.Itoa(i) {
				return nil, fmt.Errorf("encode topology: policy %d is named %q, a name the loader gives policy %s", i, p.Name, m[1])
			}
			yp.Name = ""
		}
		for _, r := range p.Ingress {
			yr := rule(r)
			yr.FromEndpoints, yr.FromEntities = yr.ToEndpoints, yr.ToEntities
			yr.ToEndpoints, yr.ToEntities = nil, nil
			yp.Ingress = append(yp.Ingress, yr)
		}
		for _, r := range p.Egress {
			yp.Egress = append(yp.Egress, rule(r))
		}
		y.Policies = append(y.Policies, yp)
	}
	b, err := yaml.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("encode topology: %w", err)
	}
	return b, nil
}

func selector(s topologies.EndpointSelector) ySelector {
	if len(s.MatchLabels) == 0 {
		return ySelector{}
	}
	return ySelector{MatchLabels: s.MatchLabels}
}

// rule encodes r with its peers as egress peers (the caller moves them for
// ingress rules).
func rule(r topologies.Rule) yRule {
	var y yRule
	for _, e := range r.Endpoints {
		y.ToEndpoints = append(y.ToEndpoints, selector(e))
	}
	y.ToEntities = r.Entities
	for _, pr := range r.ToPorts {
		var ypr yPortRule
		for _, p := range pr.Ports {
			yp := yPort{Port: strconv.Itoa(int(p.Port))}
			switch p.Protocol {
			case topologies.TCP:
				yp.Protocol = "TCP"
			case topologies.UDP:
				yp.Protocol = "UDP"
			default:
				yp.Protocol = "ANY"
			}
			ypr.Ports = append(ypr.Ports, yp)
		}
		if pr.Rules != nil {
			ypr.Rules = &yL7Rules{HTTP: []yHTTPRule{}}
			for _, h := range pr.Rules.HTTP {
				yh := yHTTPRule{Method: h.Method, Path: h.Path, Host: h.Host}
				for _, m := range h.Headers {
					yh.Headers = append(yh.Headers, m.String())
				}
				ypr.Rules.HTTP = append(ypr.Rules.HTTP, yh)
			}
		}
		y.ToPorts = append(y.ToPorts, ypr)
	}
	return y
}
