package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/hoplab/hoplab/internal/testreq"
)

// newestFeature is the newest kernel feature a test object uses:
// bpf_redirect_peer and tail calls mixed with BPF-to-BPF calls (5.10).
const newestFeature = "5.10"

// Every test object loads on a kernel that has all the features: each
// breaks 4.19 only, which is exactly what host-kernel tests cannot see.
func TestTestObjectsLoadOnHostKernel(t *testing.T) {
	testreq.Root(t)
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatalf("read kernel release: %v", err)
	}
	if !atLeast(strings.TrimSpace(string(release)), newestFeature) {
		testreq.Missing(t, fmt.Sprintf("kernel %s is older than %s, which the test objects need to load", strings.TrimSpace(string(release)), newestFeature))
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatalf("remove memlock limit: %v", err)
	}
	objects, err := filepath.Glob("testdata/*.o")
	if err != nil || len(objects) == 0 {
		t.Fatalf("no test objects in testdata (err %v)", err)
	}
	for _, obj := range objects {
		t.Run(filepath.Base(obj), func(t *testing.T) {
			spec := loadTestObject(t, filepath.Base(obj))
			coll, err := ebpf.NewCollection(spec)
			if err != nil {
				t.Fatalf("load on the host kernel: %v", err)
			}
			coll.Close()
		})
	}
}

// atLeast compares "major.minor[.patch][-suffix]" releases by major.minor.
func atLeast(release, want string) bool {
	var maj, min, wmaj, wmin int
	fmt.Sscanf(release, "%d.%d", &maj, &min)
	fmt.Sscanf(want, "%d.%d", &wmaj, &wmin)
	return maj > wmaj || maj == wmaj && min >= wmin
}
