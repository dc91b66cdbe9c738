package topologies

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
)

// Identity is a Cilium-style security identity.
type Identity uint32

// Reserved identities, numbered as in Cilium.
const (
	// IdentityAny is the wildcard identity of policy entries (any peer).
	IdentityAny           Identity = 0
	IdentityHost          Identity = 1
	IdentityWorld         Identity = 2
	IdentityUnmanaged     Identity = 3
	IdentityHealth        Identity = 4
	IdentityInit          Identity = 5
	IdentityRemoteNode    Identity = 6
	IdentityKubeAPIServer Identity = 7
)

// Range of identities allocated to label sets.
const (
	MinLabelIdentity Identity = 256
	MaxLabelIdentity Identity = 65535
)

// String returns the number, with the reserved name for reserved identities
// (e.g. "2 (reserved:world)").
func (id Identity) String() string {
	if n := id.ReservedName(); n != "" {
		return fmt.Sprintf("%d (reserved:%s)", uint32(id), n)
	}
	if id == IdentityAny {
		return "0 (any)"
	}
	return fmt.Sprintf("%d", uint32(id))
}

// ReservedName returns the name of a reserved identity ("host", "world",
// ...) or "" for other identities.
func (id Identity) ReservedName() string {
	switch id {
	case IdentityHost:
		return "host"
	case IdentityWorld:
		return "world"
	case IdentityUnmanaged:
		return "unmanaged"
	case IdentityHealth:
		return "health"
	case IdentityInit:
		return "init"
	case IdentityRemoteNode:
		return "remote-node"
	case IdentityKubeAPIServer:
		return "kube-apiserver"
	}
	return ""
}

// IdentityOf returns the preferred identity of a label set: SHA-256 of the
// canonical label string (Labels.String) mapped into 256..65535. It depends
// only on the labels, so it is the same in every topology; a topology
// resolves the rare collision between two of its label sets (see
// Topology.IdentityOf).
func IdentityOf(l Labels) Identity {
	sum := sha256.Sum256([]byte("hoplab/identity/" + l.String()))
	n := uint64(MaxLabelIdentity - MinLabelIdentity + 1)
	return MinLabelIdentity + Identity(binary.BigEndian.Uint64(sum[:8])%n)
}

// IdentityOf returns the identity the topology gives label set l: that of
// its pods with exactly these labels, or the preferred IdentityOf(l) when no
// pod has them.
func (t *Topology) IdentityOf(l Labels) Identity {
	if id, ok := t.identities[l.String()]; ok {
		return id
	}
	return IdentityOf(l)
}

// allocateIdentities gives each distinct label set of the topology's pods an
// identity. Label sets are processed in order of their canonical strings; a
// set whose preferred identity is taken probes upwards (wrapping within the
// label range). The result is independent of the order of pods in the file.
func (t *Topology) allocateIdentities() {
	sets := map[string]Labels{}
	for _, p := range t.Pods {
		sets[p.Labels.String()] = p.Labels
	}
	keys := make([]string, 0, len(sets))
	for k := range sets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.identities = make(map[string]Identity, len(keys))
	used := map[Identity]bool{}
	// First pass: every set that gets its preferred identity keeps it, so
	// that a collision only ever moves the colliding sets.
	var pending []string
	for _, k := range keys {
		id := IdentityOf(sets[k])
		if used[id] {
			pending = append(pending, k)
			continue
		}
		used[id] = true
		t.identities[k] = id
	}
	for _, k := range pending {
		id := IdentityOf(sets[k])
		for used[id] {
			id++
			if id > MaxLabelIdentity {
				id = MinLabelIdentity
			}
		}
		used[id] = true
		t.identities[k] = id
	}
	for _, p := range t.Pods {
		p.Identity = t.identities[p.Labels.String()]
	}
}
