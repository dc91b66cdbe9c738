package datapath

import "fmt"

// MonitorAggregation is how many trace notifications the datapath emits
// (Cilium's monitor aggregation levels).
type MonitorAggregation uint8

// Aggregation levels.
const (
	// AggregationNone reports every packet at every observation point.
	// It is the default: hoplab follows packets hop by hop.
	AggregationNone MonitorAggregation = 0
	// AggregationMedium suppresses FROM_* observation points and reports
	// TO_* points only for new connections and packets carrying SYN, FIN
	// or RST. Drops are always reported.
	AggregationMedium MonitorAggregation = 1
)

// SetMonitorAggregation sets the trace level in hoplab_config.
func (d *Datapath) SetMonitorAggregation(level MonitorAggregation) error {
	if err := d.lxc.HoplabConfig.Put(uint32(0), &lxcHoplabConfig{MonitorAggregation: uint8(level)}); err != nil {
		return fmt.Errorf("set monitor aggregation: %w", err)
	}
	return nil
}
