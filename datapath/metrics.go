package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// ReasonForwarded is the metrics reason of forwarded packets; every other
// reason is a DropReason.
const ReasonForwarded DropReason = 0

// MetricKey identifies a counter: a reason (ReasonForwarded or a drop
// reason) and a direction.
type MetricKey struct {
	Reason    DropReason
	Direction Direction
}

// MetricValue is a counter summed over all CPUs.
type MetricValue struct {
	Packets uint64
	Bytes   uint64
}

// Metrics is the per-CPU hoplab_metrics map.
type Metrics struct {
	m *ebpf.Map
}

// Get returns one counter, zero if it was never hit.
func (m *Metrics) Get(reason DropReason, dir Direction) (MetricValue, error) {
	var vals []lxcMetricsValue
	k := lxcMetricsKey{Reason: uint8(reason), Dir: uint8(dir)}
	if err := m.m.Lookup(&k, &vals); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return MetricValue{}, nil
		}
		return MetricValue{}, fmt.Errorf("metrics %v/%v: %w", reason, dir, err)
	}
	var out MetricValue
	for _, v := range vals {
		out.Packets += v.Count
		out.Bytes += v.Bytes
	}
	return out, nil
}

// All returns every counter, summed over CPUs.
func (m *Metrics) All() (map[MetricKey]MetricValue, error) {
	out := map[MetricKey]MetricValue{}
	var (
		k    lxcMetricsKey
		vals []lxcMetricsValue
	)
	it := m.m.Iterate()
	for it.Next(&k, &vals) {
		var sum MetricValue
		for _, v := range vals {
			sum.Packets += v.Count
			sum.Bytes += v.Bytes
		}
		out[MetricKey{Reason: DropReason(k.Reason), Direction: Direction(k.Dir)}] = sum
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("metrics dump: %w", err)
	}
	return out, nil
}
