package topologies

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
