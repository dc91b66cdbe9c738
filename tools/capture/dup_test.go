package capture

import (
	"testing"
	"time"
)

func TestMarkDuplicatesWindowAndInterfaces(t *testing.T) {
	f := ethTCP(t, 4)
	mk := func(i int, ts time.Duration, ifc int) Packet {
		p := Packet{Index: i, Timestamp: testTime.Add(ts), Data: append([]byte(nil), f...), OrigLen: len(f), Interface: ifc}
		if err := checkHeaders(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkts := []Packet{mk(0, 0, 0), mk(1, time.Millisecond, 1), mk(2, time.Second, 2), mk(3, time.Second+time.Millisecond, 2)}
	MarkDuplicates(pkts)
	if !pkts[1].Flags.Has(Duplicate) || pkts[1].DuplicateOf != 0 {
		t.Errorf("packet 1 (other interface, 1 ms later): %v of %d", pkts[1].Flags, pkts[1].DuplicateOf)
	}
	if pkts[2].Flags.Has(Duplicate) {
		t.Error("packet 2 is outside the window")
	}
	if pkts[3].Flags.Has(Duplicate) {
		t.Error("packet 3 was seen on the same interface as packet 2 (a retransmission, not a sighting)")
	}
}
