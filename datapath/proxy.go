package datapath

// Marks of packets for the node's L7 proxy (bpf/lib/proxy.h, Cilium's
// values): a flow whose policy entry names a proxy port (PolicyMap.
// AllowProxy) has its packets marked MarkToProxy(port) and handed to the
// stack, where the proxy's policy routing delivers them locally.
const (
	// MarkMagicToProxy is the magic of a packet for the proxy.
	MarkMagicToProxy = 0x0200
	// MarkMagicMask selects the magic in skb->mark.
	MarkMagicMask = 0x0f00
)

// MarkToProxy is the mark of a packet for the proxy on port: the magic,
// and the port in the upper 16 bits.
func MarkToProxy(port uint16) uint32 { return MarkMagicToProxy | uint32(port)<<16 }
