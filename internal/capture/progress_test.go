package capture

import (
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/google/gopacket/layers"
)

// progressCall is one call of a Progress.
type progressCall struct {
	stage       Stage
	done, total int64
}

// ReadFileProgress reports reading in bytes of the file and duplicate
// marking in packets, each stage counting up to its total and ending with
// done == total, reading before de-duplicating; its packets are
// ReadFile's.
func TestReadFileProgress(t *testing.T) {
	const n = 3*progressEvery + 10
	recs := make([]record, 0, n)
	for i := range n {
		recs = append(recs, record{data: flowFrame(t, layers.IPProtocolTCP, "10.1.1.10", uint16(10000+i), "10.1.2.20", 8080, 64)})
	}
	path := writeTemp(t, "progress.pcap", writePcap(t, uint32(layers.LinkTypeEthernet), recs...))
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	var calls []progressCall
	pkts, err := ReadFileProgress(path, func(s Stage, done, total int64) {
		calls = append(calls, progressCall{s, done, total})
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pkts, want) {
		t.Error("ReadFileProgress's packets differ from ReadFile's")
	}
	var read, dedup []progressCall
	for _, c := range calls {
		switch c.stage {
		case StageRead:
			if len(dedup) > 0 {
				t.Fatalf("reading reported after de-duplicating: %v", calls)
			}
			read = append(read, c)
		case StageDedup:
			dedup = append(dedup, c)
		default:
			t.Fatalf("stage %v", c.stage)
		}
	}
	check := func(name string, cs []progressCall, total int64) {
		t.Helper()
		if len(cs) != n/progressEvery+1 {
			t.Fatalf("%s: %d progress calls for %d packets, want one per %d and one at the end", name, len(cs), n, progressEvery)
		}
		for i, c := range cs {
			if c.total != total || c.done > total || (i > 0 && c.done < cs[i-1].done) {
				t.Errorf("%s: call %d: %d of %d (previous %v), want up to %d", name, i, c.done, c.total, cs[max(i-1, 0)], total)
			}
		}
		if last := cs[len(cs)-1]; last.done != total {
			t.Errorf("%s ends at %d of %d", name, last.done, total)
		}
	}
	check("reading", read, size)
	check("de-duplicating", dedup, n)
	if read[0].done >= size || read[0].done == 0 {
		t.Errorf("reading's first report is %v: want some of the file read, not all", read[0])
	}
	if got := fmt.Sprint(StageRead, " ", StageDedup, " ", Stage(9)); got != "reading de-duplicating Stage(9)" {
		t.Errorf("stage names %q", got)
	}
}
