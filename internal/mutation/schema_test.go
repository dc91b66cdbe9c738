package mutation

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// schemaProgram exercises every placed operator, nested sites, a
// multi-line condition and a loop with break and continue; main prints
// what it computes over a range of inputs.
const schemaProgram = `package main

import "fmt"

func classify(n int, flag bool) string {
	if n < 3 && !flag {
		return "small"
	}
	if n >= 10 ||
		(n == 7 && flag) {
		return "big"
	}
	return "mid"
}

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		if x == 4 {
			continue
		}
		if x > 8 {
			break
		}
		t += x
	}
	return t
}

func main() {
	for n := 0; n < 12; n++ {
		fmt.Println(n, classify(n, n%2 == 0), sum([]int{n, 4, n + 1, 9, 2}))
	}
}
`

func goRun(t *testing.T, dir string, src []byte, env ...string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(dir, "main.go")).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s\n%s", err, out, src)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	return string(out)
}

// TestGoSchemaBehavesLikeEachMutant builds the schema of every mutant of a
// program once and checks that running it with each mutant active prints
// what the program with only that mutant applied prints, and that with
// none active it prints what the original prints.
func TestGoSchemaBehavesLikeEachMutant(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("go not on PATH")
	}
	src := []byte(schemaProgram)
	ms, err := Go("main.go", src)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, len(ms))
	for i := range ms {
		ids[i] = i + 1
	}
	schema, placed, err := GoSchema("main.go", src, ms, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.ParseFile(token.NewFileSet(), "schema.go", schema, 0); err != nil {
		t.Fatalf("schema does not parse: %v\n%s", err, schema)
	}
	if got, want := strings.Count(string(schema), "\n"), strings.Count(schemaProgram, "\n"); got != want {
		t.Errorf("schema has %d lines, the original %d: line numbers moved", got, want)
	}
	ops := map[string]bool{}
	for _, p := range placed {
		ops[ms[p.ID-1].Operator] = true
	}
	for _, op := range []string{OpRelFlip, OpRelBoundary, OpLogic, OpNegDrop, OpCheckDrop, OpOffByOne, OpContinue} {
		if !ops[op] {
			t.Errorf("no %s mutant placed", op)
		}
	}
	for i, m := range ms {
		if m.Operator == OpArith && containsID(placed, ids[i]) {
			t.Errorf("arith-flip mutant %s placed; it needs its operands' type", m)
		}
	}

	dir := t.TempDir()
	orig := goRun(t, dir, src)
	if err := os.WriteFile(filepath.Join(dir, "switch.go"), SchemaSwitchFile("main"), 0o644); err != nil {
		t.Fatal(err)
	}
	schemaBin := filepath.Join(dir, "schema")
	os.WriteFile(filepath.Join(dir, "main.go"), schema, 0o644)
	if out, err := exec.Command("go", "build", "-o", schemaBin, filepath.Join(dir, "main.go"), filepath.Join(dir, "switch.go")).CombinedOutput(); err != nil {
		t.Fatalf("schema build: %v\n%s\n%s", err, out, schema)
	}
	run := func(id int) string {
		cmd := exec.Command(schemaBin)
		cmd.Env = append(os.Environ(), SchemaEnv+"="+strconv.Itoa(id))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("schema run %d: %v\n%s", id, err, out)
		}
		return string(out)
	}
	if got := run(0); got != orig {
		t.Fatalf("schema with no mutant active:\n%s\nwant\n%s", got, orig)
	}
	os.Remove(filepath.Join(dir, "switch.go"))
	mutDir := t.TempDir()
	differs := 0
	for _, p := range placed {
		m := ms[p.ID-1]
		mutated, err := m.Apply(src)
		if err != nil {
			t.Fatal(err)
		}
		want := goRun(t, mutDir, mutated)
		if got := run(p.ID); got != want {
			t.Errorf("mutant %d (%s): schema prints\n%s\nthe mutated program\n%s", p.ID, m, got, want)
		}
		if want != orig {
			differs++
		}
		if p.FirstLine != m.Line && m.Operator != OpOffByOne && m.Operator != OpCheckDrop {
			if p.FirstLine > m.Line || p.LastLine < m.Line {
				t.Errorf("mutant %d on line %d placed in lines %d-%d", p.ID, m.Line, p.FirstLine, p.LastLine)
			}
		}
	}
	if differs == 0 {
		t.Error("no placed mutant changes the output: the comparison proves nothing")
	}
}

func containsID(ps []Placed, id int) bool {
	for _, p := range ps {
		if p.ID == id {
			return true
		}
	}
	return false
}
