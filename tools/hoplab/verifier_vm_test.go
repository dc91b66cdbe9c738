//go:build vm

package main

import (
	"encoding/json"
	"maps"
	"os"
	"testing"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/datapath/compat"
	"github.com/hoplab/hoplab/internal/testreq"
)

// TestVerifierCommand runs `hoplab verifier --json` on the kernel under
// test (HOPLAB_SERIES, default 6.1): one run, every program, each within
// 4.19's limits, the release the guest reported, and no VM left.
func TestVerifierCommand(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	series := os.Getenv("HOPLAB_SERIES")
	if series == "" {
		series = "6.1"
	}
	bin := buildCLI(t)
	out, errOut, code := runBin(t, bin, "verifier", "--kernels", series, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var runs []verifierRun
	if err := json.Unmarshal([]byte(out), &runs); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	k, err := compat.Lookup(compat.MinKernel)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Kernel != series || runs[0].Release == "" {
		t.Fatalf("runs %+v", runs)
	}
	got := map[string]string{}
	for _, s := range runs[0].Stats {
		got[s.Program] = s.Object
	}
	_, recvmsg4 := got["hoplab_sock4_recvmsg"]
	if want := datapath.ProgramObjects(recvmsg4); !maps.Equal(got, want) {
		t.Fatalf("programs %v, want %v", got, want)
	}
	for _, s := range runs[0].Stats {
		t.Logf("%s/%s: %d insns, processed %d in %v", s.Object, s.Program, s.Insns, s.Processed, s.Verify)
		if s.Insns <= 0 || s.Insns > k.MaxInsns || s.Processed <= 0 || s.Processed > k.MaxVerifiedInsns {
			t.Errorf("%s: %d insns, %d processed; want within %s's %d and %d", s.Program, s.Insns, s.Processed, k.Name, k.MaxInsns, k.MaxVerifiedInsns)
		}
	}
	if pids := qemuChildren(os.Getpid()); len(pids) != 0 {
		t.Errorf("QEMU left: %v", pids)
	}
}
