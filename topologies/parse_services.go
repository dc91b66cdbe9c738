package topologies

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
