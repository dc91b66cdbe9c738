package datapath

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/internal/testreq"
)

func TestLoad(t *testing.T) {
	dp := loadDatapath(t)
	for name, p := range dp.Programs() {
		info, err := p.Info()
		must(t, err)
		insns, err := info.Instructions()
		if err != nil {
			t.Logf("%s: loaded (instructions unavailable: %v)", name, err)
			continue
		}
		verified, _ := info.VerifiedInstructions()
		t.Logf("%s: %d instructions (xlated), %d processed by the verifier", name, len(insns), verified)
	}
}

// TestInstructionBudget checks the 4.19 limit of 4096 instructions per
// program on the committed objects (no kernel needed).
func TestInstructionBudget(t *testing.T) {
	for obj, load := range map[string]func() (*ebpf.CollectionSpec, error){"bpf_lxc": loadLxc, "bpf_netdev": loadNetdev, "bpf_overlay": loadOverlay} {
		spec, err := load()
		must(t, err)
		for name, p := range spec.Programs {
			n := 0
			for _, ins := range p.Instructions {
				n += int(ins.Size() / asm.InstructionSize)
			}
			t.Logf("%s/%s: %d instructions", obj, name, n)
			if n >= 4096 {
				t.Errorf("%s/%s: %d instructions, 4.19 allows fewer than 4096", obj, name, n)
			}
		}
	}
}

// HOPLAB_DATAPATH_OBJECTS replaces the compiled-in objects: a directory
// holding other objects is loaded, one without them is an error naming the
// variable.
func TestLoadObjectsFromEnv(t *testing.T) {
	testreq.Root(t)
	dir := t.TempDir()
	for _, name := range []string{"lxc_bpfel.o", "netdev_bpfel.o", "overlay_bpfel.o"} {
		b, err := os.ReadFile(name)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	t.Setenv(EnvObjects, dir)
	dp, err := Load(Options{CTEntries: 1024})
	must(t, err)
	dp.Close()

	empty := t.TempDir()
	t.Setenv(EnvObjects, empty)
	_, err = Load(Options{CTEntries: 1024})
	errtext.Check(t, err, "load bpf_lxc spec: "+EnvObjects+": open "+filepath.Join(empty, "lxc_bpfel.o")+": no such file or directory")
}
