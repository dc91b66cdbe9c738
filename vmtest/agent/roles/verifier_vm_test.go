//go:build vm

package roles

import (
	"context"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/datapath/compat"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestVMVerifierStats loads the datapath in a guest of the kernel under test
// (HOPLAB_SERIES, or HOPLAB_KERNEL for a user's image such as 4.19) and
// checks every program against 4.19's limits: at most 4096 instructions,
// and a verifier that processed some but at most 131072 of them. The table
// it logs is the one in docs/kernels.md.
func TestVMVerifierStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	boot, err := vmtest.PrepareBoot(ctx, vmtest.BootSpec{Series: os.Getenv("HOPLAB_SERIES")})
	if err != nil {
		t.Fatal(err)
	}
	vm := vmtest.StartT(t, boot.Options()...)
	release := vm.Ready().Release
	stats, err := nodeapi.NewClient(vm.Name(), vm).VerifierStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k, err := compat.Lookup(compat.MinKernel)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range stats {
		got[s.Program] = s.Object
	}
	// The guest probes cgroup/recvmsg4 (4.19.57 and later); the rest is
	// loaded everywhere.
	_, recvmsg4 := got["hoplab_sock4_recvmsg"]
	if want := datapath.ProgramObjects(recvmsg4); !maps.Equal(got, want) {
		t.Fatalf("got statistics of %v, want %v", got, want)
	}
	for _, s := range stats {
		t.Logf("kernel %s: %s/%s: %d insns, verifier processed %d (%v)", release, s.Object, s.Program, s.Insns, s.Processed, s.Verify)
		if s.Insns > k.MaxInsns {
			t.Errorf("%s: %d instructions, over %s's %d", s.Program, s.Insns, k.Name, k.MaxInsns)
		}
		if s.Processed <= 0 || s.Processed > k.MaxVerifiedInsns {
			t.Errorf("%s: the verifier of %s processed %d instructions, want 1..%d", s.Program, release, s.Processed, k.MaxVerifiedInsns)
		}
	}
}
