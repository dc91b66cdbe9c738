package roles

import (
	"testing"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/topologies"
)

// TestTopologyValuesAreDatapathValues: the node fills the datapath's maps by
// converting the topology's directions, protocols and reserved identities
// (datapath.Direction(e.Direction), ...); this checks the two packages agree
// on every value, so the conversions carry the meaning over.
func TestTopologyValuesAreDatapathValues(t *testing.T) {
	dirs := map[topologies.Direction]datapath.Direction{
		topologies.Ingress: datapath.Ingress,
		topologies.Egress:  datapath.Egress,
	}
	for top, dp := range dirs {
		if datapath.Direction(top) != dp {
			t.Errorf("direction %v: topologies %d, datapath %d", top, top, dp)
		}
	}
	protos := map[topologies.Protocol]datapath.Proto{
		topologies.ICMP: datapath.ProtoICMP,
		topologies.TCP:  datapath.ProtoTCP,
		topologies.UDP:  datapath.ProtoUDP,
	}
	for top, dp := range protos {
		if datapath.Proto(top) != dp {
			t.Errorf("protocol %v: topologies %d, datapath %d", top, top, dp)
		}
	}
	ids := map[topologies.Identity]datapath.Identity{
		topologies.IdentityHost:  datapath.IdentityHost,
		topologies.IdentityWorld: datapath.IdentityWorld,
	}
	for top, dp := range ids {
		if datapath.Identity(top) != dp {
			t.Errorf("identity %v: topologies %d, datapath %d", top, top, dp)
		}
	}
}
