package datapath

import (
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

func metricsIndex(reason DropReason, dir Direction) uint32 {
	return uint32(reason)<<2 | uint32(dir)&3
}

// Get returns one counter, zero if it was never hit.
func (m *Metrics) Get(reason DropReason, dir Direction) (MetricValue, error) {
	var vals []lxcMetricsValue
	if err := m.m.Lookup(metricsIndex(reason, dir), &vals); err != nil {
		return MetricValue{}, fmt.Errorf("metrics %v/%v: %w", reason, dir, err)
	}
	var out MetricValue
	for _, v := range vals {
		out.Packets += v.Count
		out.Bytes += v.Bytes
	}
	return out, nil
}

// All returns every non-zero counter, summed over CPUs.
func (m *Metrics) All() (map[MetricKey]MetricValue, error) {
	out := map[MetricKey]MetricValue{}
	var (
		k    uint32
		vals []lxcMetricsValue
	)
	it := m.m.Iterate()
	for it.Next(&k, &vals) {
		var sum MetricValue
		for _, v := range vals {
			sum.Packets += v.Count
			sum.Bytes += v.Bytes
		}
		if sum.Packets != 0 {
			out[MetricKey{Reason: DropReason(k >> 2), Direction: Direction(k & 3)}] = sum
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("metrics dump: %w", err)
	}
	return out, nil
}

// Reset zeroes every counter on every CPU. Packets counted while it runs
// may survive it.
func (m *Metrics) Reset() error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("metrics reset: %w", err)
	}
	zero := make([]lxcMetricsValue, cpus)
	all, err := m.All()
	if err != nil {
		return fmt.Errorf("metrics reset: %w", err)
	}
	for k := range all {
		if err := m.m.Update(metricsIndex(k.Reason, k.Direction), zero, ebpf.UpdateExist); err != nil {
			return fmt.Errorf("metrics reset %v/%v: %w", k.Reason, k.Direction, err)
		}
	}
	return nil
}
