package journeymatch

import (
	"fmt"
	"strings"

	"github.com/hoplab/hoplab/internal/journey"
)

// HopOption adds a condition to HaveHop: either a selector (OnNode,
// WithDevice), which says which hops are candidates, or a field condition,
// which a candidate must meet.
type HopOption func(*hopSpec)

// hopSpec is what HaveHop looks for: the expected hop in journey.Hop terms
// (zero fields are wildcards, as in journey.Diff) and the conditions the
// Hop model cannot express as non-zero values.
type hopSpec struct {
	want  journey.Hop
	descr []string
	err   error
}

func (s *hopSpec) add(descr string) { s.descr = append(s.descr, descr) }

func (s *hopSpec) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

// OnNode selects hops of the node (or router) called node.
func OnNode(node string) HopOption {
	return func(s *hopSpec) {
		if node == "" {
			s.fail("OnNode: empty node name")
		}
		s.want.Node = node
		s.add("on " + node)
	}
}

// WithDevice selects hops on the interface called dev ("bond0", "lxc1a2b3c",
// "pod4:eth0").
func WithDevice(dev string) HopOption {
	return func(s *hopSpec) {
		if dev == "" {
			s.fail("WithDevice: empty device name")
		}
		s.want.Device = dev
		s.add("device " + dev)
	}
}

// WithDNAT requires the hop to carry the packet after destination NAT to
// ip:port (ip_dst and dport).
func WithDNAT(ip string, port uint16) HopOption {
	return func(s *hopSpec) {
		if ip == "" || port == 0 {
			s.fail("WithDNAT(%q, %d): address and port are required", ip, port)
		}
		s.want.IPDst, s.want.Dport = ip, port
		s.add(fmt.Sprintf("DNAT to %s:%d", ip, port))
	}
}

// WithPorts requires the hop's L4 source and destination ports; 0 leaves one
// unasserted.
func WithPorts(sport, dport uint16) HopOption {
	return func(s *hopSpec) {
		s.want.Sport, s.want.Dport = sport, dport
		s.add(fmt.Sprintf("ports %d > %d", sport, dport))
	}
}

// WithEth requires the hop's Ethernet source and destination MACs; an empty
// string leaves one unasserted.
func WithEth(src, dst string) HopOption {
	return func(s *hopSpec) {
		s.want.EthSrc, s.want.EthDst = strings.ToLower(src), strings.ToLower(dst)
		s.add(fmt.Sprintf("eth %s > %s", orAny(src), orAny(dst)))
	}
}

// WithTTL requires the hop's IPv4 TTL to be n (1..255).
func WithTTL(n int) HopOption {
	return func(s *hopSpec) {
		if n < 1 || n > 255 {
			s.fail("WithTTL(%d): TTL must be 1..255", n)
			return
		}
		s.want.TTL = uint8(n)
		s.add(fmt.Sprintf("TTL %d", n))
	}
}

// WithIPs requires the hop's IP source and destination addresses; an empty
// string leaves one unasserted.
func WithIPs(src, dst string) HopOption {
	return func(s *hopSpec) {
		s.want.IPSrc, s.want.IPDst = src, dst
		s.add(fmt.Sprintf("ip %s > %s", orAny(src), orAny(dst)))
	}
}

// WithProto requires the hop's L4 protocol ("tcp", "udp", "icmp").
func WithProto(proto string) HopOption {
	return func(s *hopSpec) {
		s.want.Proto = strings.ToLower(proto)
		s.add("proto " + proto)
	}
}

// Forwarded requires the hop to have passed the packet on (verdict
// FORWARDED).
func Forwarded() HopOption {
	return func(s *hopSpec) {
		s.want.Verdict = journey.Forwarded
		s.add("FORWARDED")
	}
}

// WithOuter requires the hop to carry the packet encapsulated (tunnel
// mode) with these outer headers; zero fields of outer are not asserted,
// and at least one must be set.
func WithOuter(outer journey.Outer) HopOption {
	return func(s *hopSpec) {
		if outer == (journey.Outer{}) {
			s.fail("WithOuter: no outer field given")
			return
		}
		o := outer
		s.want.Outer = &o
		s.add(fmt.Sprintf("outer %s > %s udp %d vni %d", orAny(o.IPSrc), orAny(o.IPDst), o.Dport, o.VNI))
	}
}

// WithL7 requires a proxy hop's HTTP request and answer: method, path and
// status; empty or 0 leave one unasserted.
func WithL7(method, path string, status int) HopOption {
	return func(s *hopSpec) {
		if method == "" && path == "" && status == 0 {
			s.fail("WithL7: no field given")
			return
		}
		s.want.L7 = &journey.L7{Method: method, Path: path, Status: status}
		s.add(fmt.Sprintf("HTTP %s %s -> %d", orAny(method), orAny(path), status))
	}
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}
