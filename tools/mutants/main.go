// Command mutants is `make mutants`: it breaks the code on purpose, one
// small change at a time, and reports which test noticed.
//
//	go run ./tools/mutants [-area bpf,journey,topologies,capture] [-sample N] [-seed S] [-workers 2] [-vm]
//
// Mutants come from the source (package internal/mutation): the BPF C of
// datapath/bpf over its tokens, and the Go of internal/journey, topologies
// and internal/capture over its syntax tree. A BPF mutant recompiles only the
// objects that include the mutated file, with the flags of
// datapath/gen.go, is checked by the 4.19 compatibility check
// (datapath/compat), and is run through the datapath's tests, compiled
// once, which load it through HOPLAB_DATAPATH_OBJECTS. A Go mutant runs
// its package's tests. With -vm (or MUTANTS_VM=1) the BPF mutants that
// survive the host tests also run the e2e suites in VMs.
//
// Each worker owns a copy of the source tree, so the tree you work in is
// never modified. Mutants listed in tools/mutants/equivalent.txt (key, a
// tab, the reason) are equivalent: no test can tell them from the
// original. The table ends with the score of each area, killed over
// killed and survived; the command fails when an area is below its target
// (-min-bpf 90, -min-go 85).
package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hoplab/hoplab/internal/mutation"
)

// Area is a part of the code mutated and tested together.
type Area struct {
	// Name is the area's name on the command line and in the table.
	Name string
	// Files are globs of the mutated files, relative to the repository.
	Files []string
	// Package is the Go package whose tests run ("" for bpf, which runs
	// the datapath's).
	Package string
	// Target is the score the area must reach, in percent.
	Target float64
}

// Areas are the mutated parts of hoplab.
var Areas = []Area{
	{Name: "bpf", Files: []string{"datapath/bpf/*.c", "datapath/bpf/lib/*.h"}},
	{Name: "journey", Files: []string{"internal/journey/*.go"}, Package: "./internal/journey"},
	{Name: "topologies", Files: []string{"topologies/policy.go", "topologies/validate.go", "topologies/trace.go", "topologies/identity.go", "topologies/derive.go"}, Package: "./topologies"},
	{Name: "capture", Files: []string{"internal/capture/*.go"}, Package: "./internal/capture"},
}

func main() {
	var (
		areas    = flag.String("area", "bpf,journey,topologies,capture", "areas to mutate, comma-separated")
		sample   = flag.Int("sample", 0, "mutate at most this many mutants per area, those whose keys hash lowest under -seed (0: all)")
		seed     = flag.Uint64("seed", 1, "seed of -sample")
		workers  = flag.Int("workers", 2, "mutants tested at once, each in its own copy of the tree")
		noSchema = flag.Bool("no-schema", false, "build every Go mutant on its own instead of one schema per area (slower; to cross-check the schema)")
		vm       = flag.Bool("vm", os.Getenv("MUTANTS_VM") == "1", "run the e2e suites on BPF mutants that survive the host tests")
		only     = flag.String("only", "", "mutate only files whose path contains this")
		list     = flag.Bool("list", false, "list the mutants, with the keys equivalent.txt takes, and exit")
		minBPF   = flag.Float64("min-bpf", 90, "score the bpf area must reach (percent)")
		minGo    = flag.Float64("min-go", 85, "score each Go area must reach (percent)")
		timeout  = flag.Duration("timeout", 3*time.Minute, "bound of one mutant's tests")
		report   = flag.String("report", "", "also write the table to this file")
		equivArg = flag.String("equivalent", "tools/mutants/equivalent.txt", "file of equivalent mutants (key TAB reason)")
	)
	flag.Parse()
	if err := run(runSpec{areas: *areas, sample: *sample, seed: *seed, workers: *workers, vm: *vm, only: *only, list: *list, noSchema: *noSchema,
		minBPF: *minBPF, minGo: *minGo, timeout: *timeout, report: *report, equivalent: *equivArg}); err != nil {
		fmt.Fprintln(os.Stderr, "mutants:", err)
		os.Exit(1)
	}
}

type runSpec struct {
	areas, only, report, equivalent string
	sample, workers                 int
	seed                            uint64
	vm, list, noSchema              bool
	minBPF, minGo                   float64
	timeout                         time.Duration
}

// job is one mutant of one area.
type job struct {
	id   int
	area Area
	m    mutation.Mutant
}

// Outcome is what became of a mutant.
type Outcome struct {
	// Status is killed, survived, equivalent or stillborn (it did not
	// compile, so no test ran).
	Status string
	// By is the test (or check) that killed it, or the reason it is
	// equivalent.
	By string
	// Took is the time its tests ran.
	Took time.Duration
}

// Mutant statuses.
const (
	Killed     = "killed"
	Survived   = "survived"
	Equivalent = "equivalent"
	Stillborn  = "stillborn"
)

func run(spec runSpec) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	equiv, err := readEquivalents(filepath.Join(root, spec.equivalent))
	if err != nil {
		return err
	}
	var jobs []job
	var chosen []Area
	for _, name := range strings.Split(spec.areas, ",") {
		a, ok := areaByName(strings.TrimSpace(name))
		if !ok {
			return fmt.Errorf("unknown area %q (known: bpf, journey, topologies, capture)", name)
		}
		chosen = append(chosen, a)
		ms, err := generate(root, a, spec.only)
		if err != nil {
			return err
		}
		if spec.sample > 0 && len(ms) > spec.sample {
			ms = sampleByKey(ms, spec.sample, spec.seed)
		}
		for _, m := range ms {
			jobs = append(jobs, job{id: len(jobs) + 1, area: a, m: m})
		}
	}
	if spec.list {
		for _, j := range jobs {
			fmt.Printf("%4d %-10s %s\n     key: %s\n", j.id, j.area.Name, j.m, j.m.Key())
		}
		return nil
	}
	if len(jobs) == 0 {
		return errors.New("no mutants")
	}
	for _, a := range chosen {
		if a.Package == "" && os.Geteuid() != 0 {
			return errors.New("the bpf area runs the datapath's BPF tests, which need root (sudo -E make mutants, or -area journey,topologies,capture)")
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "hoplab-mutants-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	fmt.Printf("mutants: %d mutants in %s; %d workers, each in a copy of the tree under %s\n", len(jobs), areaNames(chosen), spec.workers, tmp)
	ws := make([]*workspace, spec.workers)
	var setupErr error
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := newWorkspace(ctx, root, filepath.Join(tmp, fmt.Sprintf("w%d", i)), chosen, spec.timeout)
			if err != nil {
				setupErr = err
				return
			}
			ws[i] = w
		}()
	}
	wg.Wait()
	if setupErr != nil {
		return fmt.Errorf("prepare: %w", setupErr)
	}
	fmt.Printf("mutants: tree copied and baseline green in %v\n", time.Since(start).Round(time.Second))
	schemas := map[string]*schema{}
	for _, a := range chosen {
		if a.Package == "" || spec.noSchema {
			continue
		}
		t0 := time.Now()
		s, err := ws[0].buildSchema(ctx, a, jobs, filepath.Join(tmp, a.Name+".schema.test"))
		if err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if s == nil {
			continue
		}
		schemas[a.Name] = s
		n := 0
		for _, j := range jobs {
			if j.area.Name == a.Name {
				n++
			}
		}
		fmt.Printf("mutants: %s: %d of %d mutants in one schema build (%v); the rest built one by one\n",
			a.Name, len(s.placed), n, time.Since(t0).Round(100*time.Millisecond))
	}

	outcomes := make([]Outcome, len(jobs))
	queue := make(chan int)
	var mu sync.Mutex
	done := 0
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				j := jobs[i]
				var o Outcome
				if reason, ok := equiv[j.m.Key()]; ok {
					o = Outcome{Status: Equivalent, By: reason}
				} else {
					o = w.test(ctx, j, spec.vm, schemas[j.area.Name])
				}
				mu.Lock()
				outcomes[i] = o
				done++
				fmt.Printf("[%d/%d] %-9s %s:%d %s %s -> %s  %s\n", done, len(jobs), o.Status, j.m.File, j.m.Line, j.m.Operator,
					oneLine(j.m.Original), oneLine(j.m.Replacement), o.By)
				mu.Unlock()
			}
		}()
	}
	for i := range jobs {
		if ctx.Err() != nil {
			break
		}
		queue <- i
	}
	close(queue)
	wg.Wait()
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}

	var b strings.Builder
	writeTable(&b, jobs, outcomes)
	fails := writeScores(&b, chosen, jobs, outcomes, spec.minBPF, spec.minGo)
	fmt.Fprintf(&b, "\nmutation run took %v\n", time.Since(start).Round(time.Second))
	fmt.Print(b.String())
	if spec.report != "" {
		if err := os.WriteFile(spec.report, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if len(fails) > 0 {
		return errors.New(strings.Join(fails, "; "))
	}
	return nil
}

func areaByName(name string) (Area, bool) {
	for _, a := range Areas {
		if a.Name == name {
			return a, true
		}
	}
	return Area{}, false
}

func areaNames(as []Area) string {
	var n []string
	for _, a := range as {
		n = append(n, a.Name)
	}
	return strings.Join(n, ", ")
}

// sampleByKey picks n of ms: those whose keys hash lowest under seed, in
// file order. A mutant is in the sample for its own key alone, so an edit
// elsewhere in the tree adds or removes only the mutants it touches,
// where a shuffle of the whole list drew a new sample after every edit.
func sampleByKey(ms []mutation.Mutant, n int, seed uint64) []mutation.Mutant {
	type ranked struct {
		rank uint64
		m    mutation.Mutant
	}
	rs := make([]ranked, len(ms))
	for i, m := range ms {
		h := fnv.New64a()
		_ = binary.Write(h, binary.LittleEndian, seed)
		h.Write([]byte(m.Key()))
		rs[i] = ranked{h.Sum64(), m}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int { return cmp.Compare(a.rank, b.rank) })
	out := make([]mutation.Mutant, n)
	for i := range out {
		out[i] = rs[i].m
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].File < out[j].File || out[i].File == out[j].File && out[i].Offset < out[j].Offset
	})
	return out
}

// generate makes the mutants of an area's files.
func generate(root string, a Area, only string) ([]mutation.Mutant, error) {
	var files []string
	for _, g := range a.Files {
		m, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	var out []mutation.Mutant
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if strings.HasSuffix(rel, "_test.go") || (only != "" && !strings.Contains(rel, only)) {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if a.Package == "" {
			out = append(out, mutation.C(rel, src)...)
			continue
		}
		ms, err := mutation.Go(rel, src)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// readEquivalents reads "key<TAB>reason" lines; # starts a comment.
func readEquivalents(path string) (map[string]string, error) {
	out := map[string]string{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for n, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, reason, ok := strings.Cut(line, "\t")
		if !ok || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: want KEY<TAB>reason", path, n+1)
		}
		out[key] = strings.TrimSpace(reason)
	}
	return out, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the hoplab source tree (no go.mod above the working directory)")
		}
		dir = parent
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	if s == "" {
		return `""`
	}
	return s
}
