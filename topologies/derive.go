package topologies

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
)

// Derivation of names, MACs and endpoint IDs. Every derived value is a hash
// of a kind tag and a name, so it is reproducible run to run and does not
// depend on the order of entries in the file. Candidates are tried with the
// suffix "#1", "#2", ... until one is free; entries are processed in name
// order, so collisions also resolve deterministically.
//
// MAC layouts (all unicast; the derived ones locally administered):
//
//	pod eth0          0a:hh:hh:hh:hh:hh   hash("pod-mac/"+pod)
//	pod lxc (host)    0e:hh:hh:hh:hh:hh   hash("lxc-mac/"+pod)
//	node NIC i        52:54:hh:hh:hh:0i   hash("node/"+node), i = 1, 2
//	ToR NIC i → node  52:55:hh:hh:hh:0i   same hash as the node's NICs
//	external eth0     0a:hh:hh:hh:hh:hh   hash("external-mac/"+name)
//	ToR → external    0e:hh:hh:hh:hh:hh   hash("external-router-mac/"+name)
//
// bond0's MAC is NIC 1's (Linux gives a bond its first slave's MAC); the
// ToR bond facing a node likewise takes its NIC 1 MAC.

func hashName(kind, name string, attempt int) [32]byte {
	s := "hoplab/" + kind + "/" + name
	if attempt > 0 {
		s += fmt.Sprintf("#%d", attempt)
	}
	return sha256.Sum256([]byte(s))
}

func podMACCandidate(name string, attempt int) MAC {
	h := hashName("pod-mac", name, attempt)
	return MAC{0x0a, h[0], h[1], h[2], h[3], h[4]}
}

func lxcMACCandidate(name string, attempt int) MAC {
	h := hashName("lxc-mac", name, attempt)
	return MAC{0x0e, h[0], h[1], h[2], h[3], h[4]}
}

func lxcNameCandidate(name string, attempt int) string {
	h := hashName("lxc-name", name, attempt)
	return "lxc" + hex.EncodeToString(h[:3])
}

func nodeMACCandidates(name string, attempt int) (nic, tor [2]MAC) {
	h := hashName("node", name, attempt)
	for i := range 2 {
		nic[i] = MAC{0x52, 0x54, h[0], h[1], h[2], byte(i + 1)}
		tor[i] = MAC{0x52, 0x55, h[0], h[1], h[2], byte(i + 1)}
	}
	return nic, tor
}

func endpointIDCandidate(name string, attempt int) uint16 {
	h := hashName("endpoint", name, attempt)
	return uint16(1 + binary.BigEndian.Uint32(h[:4])%MaxEndpointID)
}

// MaxEndpointID is the largest derived endpoint ID (IDs are 1..MaxEndpointID).
const MaxEndpointID = 4095

// derive fills in every derived field. Pinned pod MACs must already be
// unique (checked by the validator).
func (t *Topology) derive() {
	usedMAC := map[MAC]bool{}
	for _, p := range t.Pods {
		if p.MACPinned {
			usedMAC[p.MAC] = true
		}
	}
	nodes := append([]*Node(nil), t.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	for _, n := range nodes {
		n.RouterIP = n.PodCIDR.Addr().Next()
		for attempt := 0; ; attempt++ {
			nic, tor := nodeMACCandidates(n.Name, attempt)
			if usedMAC[nic[0]] || usedMAC[nic[1]] || usedMAC[tor[0]] || usedMAC[tor[1]] {
				continue
			}
			n.NICMACs, n.TorNICMACs = nic, tor
			n.BondMAC, n.TorBondMAC = nic[0], tor[0]
			for _, m := range append(nic[:], tor[:]...) {
				usedMAC[m] = true
			}
			break
		}
	}
	pods := append([]*Pod(nil), t.Pods...)
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	usedName := map[string]bool{}
	usedID := map[uint16]bool{}
	for _, p := range pods {
		if !p.MACPinned {
			p.MAC = pick(usedMAC, p.Name, podMACCandidate)
		}
		p.LXCMAC = pick(usedMAC, p.Name, lxcMACCandidate)
		p.LXCName = pick(usedName, p.Name, lxcNameCandidate)
		p.EndpointID = pick(usedID, p.Name, endpointIDCandidate)
	}
	exts := append([]*External(nil), t.Externals...)
	sort.Slice(exts, func(i, j int) bool { return exts[i].Name < exts[j].Name })
	for _, e := range exts {
		e.Gateway = externalGateway(e.IP)
		e.MAC = pick(usedMAC, e.Name, externalMACCandidate)
		e.RouterMAC = pick(usedMAC, e.Name, externalRouterMACCandidate)
		e.RouterDevice = pick(usedName, e.Name, externalDeviceCandidate)
	}
}

func externalMACCandidate(name string, attempt int) MAC {
	h := hashName("external-mac", name, attempt)
	return MAC{0x0a, h[0], h[1], h[2], h[3], h[4]}
}

func externalRouterMACCandidate(name string, attempt int) MAC {
	h := hashName("external-router-mac", name, attempt)
	return MAC{0x0e, h[0], h[1], h[2], h[3], h[4]}
}

func externalDeviceCandidate(name string, attempt int) string {
	h := hashName("external-dev", name, attempt)
	return "ext" + hex.EncodeToString(h[:3])
}

func pick[K comparable](used map[K]bool, name string, candidate func(string, int) K) K {
	for attempt := 0; ; attempt++ {
		k := candidate(name, attempt)
		if !used[k] {
			used[k] = true
			return k
		}
	}
}
