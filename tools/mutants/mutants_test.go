package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/mutation"
)

func TestKiller(t *testing.T) {
	out := "=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n    --- FAIL: TestB/sub (0.01s)\n--- FAIL: TestB (0.02s)\nFAIL\n"
	if got := killer(out); got != "TestB/sub" {
		t.Errorf("killer = %q, want the failing subtest", got)
	}
	if got := killer("panic: boom\n"); got != "panic" {
		t.Errorf("killer of a panic = %q", got)
	}
}

func TestReadEquivalents(t *testing.T) {
	p := filepath.Join(t.TempDir(), "eq.txt")
	os.WriteFile(p, []byte("# comment\n\na|b|c\tsame behaviour\n"), 0o644)
	eq, err := readEquivalents(p)
	if err != nil || eq["a|b|c"] != "same behaviour" || len(eq) != 1 {
		t.Fatalf("equivalents %v, %v", eq, err)
	}
	os.WriteFile(p, []byte("a|b|c no tab\n"), 0o644)
	if _, err := readEquivalents(p); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Errorf("a line without a reason: %v", err)
	}
	if eq, err := readEquivalents(filepath.Join(t.TempDir(), "none")); err != nil || len(eq) != 0 {
		t.Errorf("missing file: %v %v", eq, err)
	}
}

// Scores count killed over killed and survived; an area below its target
// is reported, one at or above is not.
func TestScores(t *testing.T) {
	bpf, journey := Areas[0], Areas[1]
	jobs := []job{{area: bpf}, {area: bpf}, {area: bpf}, {area: bpf}, {area: journey}, {area: journey}}
	outs := []Outcome{{Status: Killed}, {Status: Killed}, {Status: Equivalent}, {Status: Stillborn}, {Status: Killed}, {Status: Survived}}
	if s := scoreOf("bpf", jobs, outs); s != (Score{Killed: 2, Equivalent: 1, Stillborn: 1}) || s.Percent() != 100 {
		t.Errorf("bpf score %+v %.1f", s, s.Percent())
	}
	var b strings.Builder
	fails := writeScores(&b, []Area{bpf, journey}, jobs, outs, 90, 85)
	if len(fails) != 1 || !strings.Contains(fails[0], "journey scores 50.0%") {
		t.Errorf("fails %v\n%s", fails, b.String())
	}
	writeTable(&b, jobs, outs)
	if !strings.Contains(b.String(), "KILLED BY") {
		t.Errorf("table:\n%s", b.String())
	}
}

// Every area's globs find files, and their mutants apply to them.
func TestAreasGenerate(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range Areas {
		ms, err := generate(root, a, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) < 50 {
			t.Errorf("area %s: only %d mutants", a.Name, len(ms))
		}
		for _, m := range ms[:5] {
			src, err := os.ReadFile(filepath.Join(root, m.File))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Apply(src); err != nil {
				t.Errorf("%s: %v", a.Name, err)
			}
			if strings.HasSuffix(m.File, "_test.go") {
				t.Errorf("mutated a test file: %s", m)
			}
		}
	}
	_ = mutation.Mutant{}
}

// The sample depends on each mutant's key alone: the same seed picks the
// same mutants, removing one outside the sample (an edit elsewhere) leaves
// the sample as it was, removing one inside it brings in exactly one
// other, and another seed picks another sample.
func TestSampleByKeyIsStable(t *testing.T) {
	var ms []mutation.Mutant
	for i := range 40 {
		ms = append(ms, mutation.Mutant{File: fmt.Sprintf("f%02d.c", i), Operator: "rel-flip", Original: "<", Replacement: ">=", Context: "if (a < b)"})
	}
	keys := func(ms []mutation.Mutant) []string {
		var k []string
		for _, m := range ms {
			k = append(k, m.Key())
		}
		return k
	}
	sample := keys(sampleByKey(ms, 10, 1))
	if len(sample) != 10 || !slices.Equal(sample, keys(sampleByKey(ms, 10, 1))) {
		t.Fatalf("sample %v is not repeatable", sample)
	}
	if !slices.IsSorted(sample) {
		t.Errorf("sample %v not in file order", sample)
	}
	var outside, inside int
	for i, m := range ms {
		if slices.Contains(sample, m.Key()) {
			inside = i
		} else {
			outside = i
		}
	}
	without := func(i int) []mutation.Mutant { return slices.Delete(slices.Clone(ms), i, i+1) }
	if got := keys(sampleByKey(without(outside), 10, 1)); !slices.Equal(got, sample) {
		t.Errorf("removing a mutant outside the sample changed it: %v, was %v", got, sample)
	}
	got := keys(sampleByKey(without(inside), 10, 1))
	kept := 0
	for _, k := range got {
		if slices.Contains(sample, k) {
			kept++
		}
	}
	if len(got) != 10 || kept != 9 {
		t.Errorf("removing a sampled mutant: %v keeps %d of %v, want 9 and one more", got, kept, sample)
	}
	if slices.Equal(keys(sampleByKey(ms, 10, 2)), sample) {
		t.Error("seed 2 picked seed 1's sample")
	}
}
