package datapath

import (
	"fmt"
	"net/netip"
)

// The fuzzer's model of the installed state: identities, policy and CT
// entries the policy allows, per program.

// identity is the ipcache's answer for a: the longest prefix, else WORLD.
func (f *fuzzer) identity(a netip.Addr) Identity {
	best, id := -1, IdentityWorld
	for _, p := range f.ipcache {
		if p.p.Contains(a) && p.p.Bits() > best {
			best, id = p.p.Bits(), p.id
		}
	}
	if id == IdentityUnknown {
		return IdentityWorld
	}
	return id
}

// policyAllows is Cilium's lookup order over the installed entries: L3L4,
// L4-only, L3-only, allow-all, first match decides; no match denies. ICMP
// is looked up with port 0.
func (f *fuzzer) policyAllows(ep uint16, dir Direction, remote Identity, port uint16, proto Proto) bool {
	if proto == ProtoICMP {
		port = 0
	}
	for _, k := range []PolicyKey{L3L4Key(ep, dir, remote, port, proto), L4OnlyKey(ep, dir, port, proto),
		L3OnlyKey(ep, dir, remote), AllowAllKey(ep, dir)} {
		if deny, ok := f.policy[k]; ok {
			return !deny
		}
	}
	return false
}

func policyPort(k CTKey) uint16 {
	if k.Proto == ProtoICMP {
		return 0
	}
	return k.Dst.Port()
}

// entryAllowed reports whether the model allows the creation of CT entry
// e: an egress entry by its pod's egress policy (a source that is no local
// pod: made by the egress stage run directly with a pod that does not
// enforce egress), an ingress entry by its pod's ingress policy for the
// identity stored in it.
func (f *fuzzer) entryAllowed(e CTEntry) bool {
	k := e.Key
	switch k.Flags {
	case TupleOut:
		ep, ok := f.eps[k.Src.Addr()]
		if !ok || !ep.egress {
			return true
		}
		return f.policyAllows(ep.id, Egress, f.identity(k.Dst.Addr()), policyPort(k), k.Proto)
	case TupleIn:
		ep, ok := f.eps[k.Dst.Addr()]
		if !ok {
			return false
		}
		return !ep.ingress || f.policyAllows(ep.id, Ingress, e.SrcIdentity, policyPort(k), k.Proto)
	}
	return false
}

// ctPasses reports whether CT (as it is after the run) has an entry that
// makes the packet of tuple (direction dir) skip policy — the flow quoted by
// an ICMP error, the tuple itself, or its reverse in the other direction —
// whose own creation the model allows. An entry the run made wrongly is
// thus no excuse. Lifetimes are not compared (an entry may expire between
// the run and the snapshot).
func (f *fuzzer) ctPasses(tuple CTKey, related *CTKey, dir TupleFlags) (bool, string) {
	opp := TupleIn
	if dir == TupleIn {
		opp = TupleOut
	}
	if related != nil {
		r := *related
		r.Flags = opp
		if e, ok := f.cur.find(r); ok && f.entryAllowed(e) {
			return true, "related"
		}
	}
	tuple.Flags = dir
	if e, ok := f.cur.find(tuple); ok && f.entryAllowed(e) {
		return true, "established"
	}
	rev := CTKey{Src: tuple.Dst, Dst: tuple.Src, Proto: tuple.Proto, Flags: opp}
	if e, ok := f.cur.find(rev); ok && f.entryAllowed(e) {
		return true, "reply"
	}
	return false, ""
}

// egressPath is what follows the service translation of a packet from
// pod ep (srcID) to tuple.Dst: egress policy for NEW flows (useCT: the
// program looks CT up first), the TTL rule, and for a local destination
// its ingress policy.
func (f *fuzzer) egressPath(ep fzEndpoint, srcID Identity, v fzView, tuple CTKey, useCT bool) (bool, string, string) {
	dst := tuple.Dst.Addr()
	dstID := f.identity(dst)
	if ep.egress && !f.policyAllows(ep.id, Egress, dstID, policyPort(tuple), tuple.Proto) {
		ok, how := false, ""
		if useCT {
			ok, how = f.ctPasses(tuple, v.related, TupleOut)
		}
		if !ok {
			return false, fmt.Sprintf("egress policy denies (pod %d enforcing egress)", ep.id),
				fmt.Sprintf("pod %d egress to identity %d %v port %d: denied, no CT entry lets it pass", ep.id, dstID, tuple.Proto, policyPort(tuple))
		}
		f.st.viaCT["egress "+how]++
	}
	dstEp, local := f.eps[dst]
	if v.ttl <= 1 && (local || dstID != IdentityHost) {
		return false, "TTL <= 1 forwarded", fmt.Sprintf("TTL %d to %v", v.ttl, dst)
	}
	if local {
		if !v.ethIPv4 {
			// Only the egress stage run directly sees such a frame
			// (from-container passes it before); the to-container it
			// tail-calls passes it as not IPv4.
			return true, "", ""
		}
		return f.ingressPath(dstEp, srcID, v, tuple)
	}
	return true, "", ""
}

// ingressPath is to-container's policy for a NEW flow into pod ep.
func (f *fuzzer) ingressPath(ep fzEndpoint, srcID Identity, v fzView, tuple CTKey) (bool, string, string) {
	if !ep.ingress || f.policyAllows(ep.id, Ingress, srcID, policyPort(tuple), tuple.Proto) {
		return true, "", ""
	}
	ok, how := f.ctPasses(tuple, v.related, TupleIn)
	if !ok {
		return false, fmt.Sprintf("ingress policy denies (pod %d enforcing ingress)", ep.id),
			fmt.Sprintf("pod %d ingress from identity %d %v port %d: denied, no CT entry lets it pass", ep.id, srcID, tuple.Proto, policyPort(tuple))
	}
	f.st.viaCT["ingress "+how]++
	return true, "", ""
}

func (f *fuzzer) fromContainerAllows(v fzView, out []byte, _ *[5]uint32) (bool, string, string) {
	if !v.ethIPv4 {
		return true, "", ""
	}
	if !v.valid {
		return false, "invalid IPv4 forwarded", ""
	}
	ep, ok := f.eps[v.src]
	if !ok {
		return false, "source is not a local pod", v.src.String()
	}
	if !v.l4ok {
		return false, "invalid L4 header forwarded", ""
	}
	tuple := v.tuple(TupleOut)
	if svc, ok := f.services[fzSvcKey{v.dst, v.dport, Proto(v.proto)}]; ok && (v.proto == uint8(ProtoTCP) || v.proto == uint8(ProtoUDP)) {
		if len(svc.Backends) == 0 {
			return false, "service without backends forwarded", ""
		}
		ov := fzParse(out)
		found := false
		for _, b := range svc.Backends {
			if ov.valid && ov.l4ok && ov.dst == b.Addr && ov.dport == b.Port {
				found = true
			}
		}
		if !found {
			return false, "service flow forwarded, not DNATed to a backend",
				fmt.Sprintf("%v:%d -> %v:%d", v.dst, v.dport, ov.dst, ov.dport)
		}
		tuple.Dst = netip.AddrPortFrom(ov.dst, ov.dport)
	}
	return f.egressPath(ep, ep.identity, v, tuple, true)
}

// egressStageCB hands the egress stage the packet's pod, or for other
// sources pod2, which does not enforce egress.
func (f *fuzzer) egressStageCB(v fzView) *[5]uint32 {
	if ep, ok := f.eps[v.src]; ok {
		return ep.cb()
	}
	return f.byID[pod2.id].cb()
}

func (f *fuzzer) egressStageAllows(v fzView, _ []byte, cb *[5]uint32) (bool, string, string) {
	if !v.valid {
		return false, "invalid IPv4 forwarded", ""
	}
	if !v.l4ok {
		return false, "invalid L4 header forwarded", ""
	}
	ep := f.byID[uint16(cb[3])]
	return f.egressPath(ep, Identity(cb[0]), v, v.tuple(TupleOut), false)
}

// fzIdentities are the identities to-container is handed in skb->cb.
var fzIdentities = []Identity{pod1.identity, pod2.identity, fzPod3.identity, pod4ID, fzPod5ID, fzRemoteID, IdentityHost, IdentityWorld}

// toContainerCB: half the runs with the identity in skb->cb, half with
// none (to-container asks the ipcache).
func (f *fuzzer) toContainerCB(fzView) *[5]uint32 {
	if f.r.IntN(2) == 0 {
		return nil
	}
	return &[5]uint32{uint32(fzIdentities[f.r.IntN(len(fzIdentities))])}
}

func (f *fuzzer) toContainerAllows(v fzView, _ []byte, cb *[5]uint32) (bool, string, string) {
	if !v.ethIPv4 {
		return true, "", ""
	}
	if !v.valid {
		return false, "invalid IPv4 forwarded", ""
	}
	ep, ok := f.eps[v.dst]
	if !ok {
		return false, "destination is not a local pod", v.dst.String()
	}
	if !v.l4ok {
		return false, "invalid L4 header forwarded", ""
	}
	src := f.identity(v.src)
	if cb != nil && cb[0] != 0 {
		src = Identity(cb[0])
	}
	return f.ingressPath(ep, src, v, v.tuple(TupleIn))
}

func (f *fuzzer) fromNetdevAllows(v fzView, _ []byte, _ *[5]uint32) (bool, string, string) {
	if !v.ethIPv4 {
		return true, "", ""
	}
	if !v.valid {
		return false, "invalid IPv4 forwarded", ""
	}
	ep, ok := f.eps[v.dst]
	if !ok {
		return true, "", "" // not for a local pod: to the stack untouched
	}
	if v.ttl <= 1 {
		return false, "TTL <= 1 forwarded", fmt.Sprintf("TTL %d to %v", v.ttl, v.dst)
	}
	if !v.l4ok {
		return false, "invalid L4 header forwarded", ""
	}
	return f.ingressPath(ep, f.identity(v.src), v, v.tuple(TupleIn))
}

// fromOverlayCB is the tunnel key a VXLAN device would give the packet
// (overlayHarness): from node2, with a VNI among the cluster's identities,
// WORLD, and the 0 and HOST no node sends.
func (f *fuzzer) fromOverlayCB(fzView) *[5]uint32 {
	vnis := []Identity{pod4ID, fzPod5ID, fzRemoteID, pod2.identity, fzPod3.identity, IdentityWorld, IdentityUnknown, IdentityHost}
	return tunnelCB(vnis[f.vnis.IntN(len(vnis))], node2IP)
}

// fromOverlayAllows is fromNetdevAllows with the sender's identity from
// the VNI; a packet with an invalid VNI is never forwarded.
func (f *fuzzer) fromOverlayAllows(v fzView, _ []byte, cb *[5]uint32) (bool, string, string) {
	if !v.ethIPv4 {
		return true, "", ""
	}
	vni := Identity(cb[0])
	if vni == IdentityUnknown || vni == IdentityHost {
		return false, "invalid VNI forwarded", fmt.Sprintf("VNI %d", vni)
	}
	if !v.valid {
		return false, "invalid IPv4 forwarded", ""
	}
	ep, ok := f.eps[v.dst]
	if !ok {
		return true, "", "" // not for a local pod: to the stack untouched
	}
	if v.ttl <= 1 {
		return false, "TTL <= 1 forwarded", fmt.Sprintf("TTL %d to %v", v.ttl, v.dst)
	}
	if !v.l4ok {
		return false, "invalid L4 header forwarded", ""
	}
	return f.ingressPath(ep, vni, v, v.tuple(TupleIn))
}
