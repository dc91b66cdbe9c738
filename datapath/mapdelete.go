package datapath

import (
	"errors"

	"github.com/cilium/ebpf"
)

// deleteMatching deletes the entries of m for which match (nil: all) is
// true. The keys are collected first and deleted after the walk, since
// deleting while iterating a hash map restarts it; a key gone meanwhile
// (an LRU eviction, the datapath) is not an error.
func deleteMatching[K, V any](m *ebpf.Map, match func(*K, *V) bool) error {
	var (
		k    K
		v    V
		keys []K
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if match == nil || match(&k, &v) {
			keys = append(keys, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for i := range keys {
		if err := m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}
