package datapath

import (
	"testing"
	"time"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"

	"github.com/hoplab/hoplab/internal/testreq"
)

// Loaded with VerifierStats, every program of both objects reports its
// size and the instructions the host's verifier processed.
func TestVerifierStatsOnHost(t *testing.T) {
	testreq.Root(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	dp, err := Load(Options{CTEntries: 1024, VerifierStats: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	stats := dp.VerifierStats()
	want := ProgramObjects(HaveSockRecvmsg4() == nil)
	if len(stats) != len(want) {
		t.Fatalf("got %d programs, want %d: %+v", len(stats), len(want), stats)
	}
	for _, s := range stats {
		t.Logf("%s/%s: %d insns, verifier processed %d in %v", s.Object, s.Program, s.Insns, s.Processed, s.Verify)
		if want[s.Program] != s.Object {
			t.Errorf("%s: object %q, want %q", s.Program, s.Object, want[s.Program])
		}
		if s.Insns < 20 || s.Processed < s.Insns/2 || s.Verify <= 0 {
			t.Errorf("%s: implausible statistics %+v", s.Program, s)
		}
	}
	if plain, err := Load(Options{CTEntries: 1024}); err != nil {
		t.Fatal(err)
	} else if len(plain.VerifierStats()) != 0 {
		t.Error("statistics without VerifierStats")
	} else {
		plain.Close()
	}
}

// 4.19 has no statistics level: the count is the last line after the
// whole trace; 5.2+ add the verification time.
func TestStatsFromLog(t *testing.T) {
	insns := asm.Instructions{asm.LoadImm(asm.R0, 1, asm.DWord), asm.Return()}
	old := statsFromLog("o", "p", insns, "0: (b7) r0 = 0\nprocessed 12 insns (limit 131072), stack depth 0\nprocessed 1234 insns (limit 131072), stack depth 224\n")
	if old != (ProgramStats{Object: "o", Program: "p", Insns: 3, Processed: 1234}) {
		t.Errorf("4.19 log: %+v", old)
	}
	newer := statsFromLog("o", "p", insns, "verification time 1830 usec\nstack depth 224\nprocessed 5409 insns (limit 1000000) max_states_per_insn 4 total_states 300 peak_states 120 mark_read 20\n")
	if newer.Processed != 5409 || newer.Verify != 1830*time.Microsecond {
		t.Errorf("6.x log: %+v", newer)
	}
	if none := statsFromLog("o", "p", insns, ""); none.Processed != -1 || none.Verify != 0 {
		t.Errorf("no log: %+v", none)
	}
}
