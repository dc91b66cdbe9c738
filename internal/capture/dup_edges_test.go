package capture

import "testing"

// A sighting on a second interface of a packet the first interface saw
// twice (a retransmission, not a sighting) points at the first of the two:
// the earliest match wins, whatever matches after it.
func TestMarkDuplicatesFirstMatchWins(t *testing.T) {
	f := ethTCP(t, 4)
	mk := func(i, ifc int) Packet {
		p := Packet{Index: i, Timestamp: testTime.Add(ms(i)), Data: append([]byte(nil), f...), OrigLen: len(f), Interface: ifc, LinkType: LinkTypeEthernet}
		if err := checkHeaders(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkts := []Packet{mk(0, 0), mk(1, 0), mk(2, 1)}
	MarkDuplicates(pkts)
	for i, want := range []struct {
		dup bool
		of  int
	}{{false, 0}, {false, 0}, {true, 0}} {
		if got := pkts[i]; got.Flags.Has(Duplicate) != want.dup || got.DuplicateOf != want.of {
			t.Errorf("packet %d: flags %v of %d, want duplicate %v of %d", i, got.Flags, got.DuplicateOf, want.dup, want.of)
		}
	}
}
