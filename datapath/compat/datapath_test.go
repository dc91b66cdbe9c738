package compat

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/hoplab/hoplab/internal/testreq"
)

// datapathObjects finds the committed bpf2go objects of the datapath
// (datapath/**/*_bpfel.o), leaving out this package's test objects.
func datapathObjects(t *testing.T) []string {
	t.Helper()
	var objs []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, "_bpfel.o") {
			objs = append(objs, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk datapath: %v", err)
	}
	if len(objs) == 0 {
		t.Fatal("no datapath objects (datapath/**/*_bpfel.o): run `make generate` and commit the bpf2go output")
	}
	return objs
}

// The datapath must load on 4.19: every program of every committed object
// passes the check. This is how `make test` enforces the 4.19 rules.
func TestDatapathObjectsLoadOn419(t *testing.T) {
	k := linux419Profile(t)
	for _, obj := range datapathObjects(t) {
		t.Run(filepath.Base(obj), func(t *testing.T) {
			spec, err := ebpf.LoadCollectionSpec(obj)
			if err != nil {
				t.Fatalf("load %s: %v", obj, err)
			}
			for _, name := range sortedKeys(spec.Programs) {
				t.Logf("program %s: %d instructions (4.19 limit %d)", name, InsnCount(spec.Programs[name]), k.MaxInsns)
			}
			for _, v := range Check(spec, k) {
				t.Errorf("%s", v)
			}
		})
	}
}

// 4.19's verifier gives up after 131072 explored instructions, a limit the
// static check cannot see. The host's verifier reports how many it
// explored; 4.19 prunes less, so a program over the limit here would not
// load there.
func TestDatapathVerifierComplexity(t *testing.T) {
	testreq.Root(t)
	k := linux419Profile(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatalf("remove memlock limit: %v", err)
	}
	for _, obj := range datapathObjects(t) {
		t.Run(filepath.Base(obj), func(t *testing.T) {
			spec, err := ebpf.LoadCollectionSpec(obj)
			if err != nil {
				t.Fatalf("load %s: %v", obj, err)
			}
			coll, err := ebpf.NewCollection(spec)
			if err != nil {
				t.Fatalf("load %s on the host kernel: %v", obj, err)
			}
			defer coll.Close()
			for _, name := range sortedKeys(coll.Programs) {
				info, err := coll.Programs[name].Info()
				if err != nil {
					t.Fatalf("program %s info: %v", name, err)
				}
				n, ok := info.VerifiedInstructions()
				if !ok {
					testreq.Missing(t, "the host kernel does not report verified instructions (needs 5.16)")
				}
				t.Logf("program %s: verifier explored %d instructions (4.19 limit %d)", name, n, k.MaxVerifiedInsns)
				if int(n) > k.MaxVerifiedInsns {
					t.Errorf("program %s: the host verifier explored %d instructions, over 4.19's limit of %d: split it with tail calls", name, n, k.MaxVerifiedInsns)
				}
			}
		})
	}
}
