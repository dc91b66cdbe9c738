package main

import (
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hoplab/hoplab/internal/mutation"
)

// schema is one Go area's mutation schema: a test binary that holds most
// of the area's mutants at once, the active one chosen by an environment
// variable, so each of them costs a test run instead of a build.
type schema struct {
	bin    string
	pkgDir string // the package's folder, relative to a workspace
	placed map[int]bool
}

// has reports whether the mutant with this job ID is in the schema.
func (s *schema) has(id int) bool { return s != nil && s.placed[id] }

const schemaSwitchFile = "zz_hoplab_mutant_switch.go"

// compileErr matches a compiler error's file and line.
var compileErr = regexp.MustCompile(`(?m)^(?:\./)?(\S+\.go):(\d+):\d+: `)

// buildSchema writes the schema of a's jobs into w's tree, builds its test
// binary as bin and restores the tree. Mutants whose rewrite does not
// compile (a stillborn mutant, or a site whose type is not plain bool) are
// left out and tested one by one. The binary must pass the tests with no
// mutant active.
func (w *workspace) buildSchema(ctx context.Context, a Area, jobs []job, bin string) (*schema, error) {
	byFile := map[string][]job{}
	for _, j := range jobs {
		if j.area.Name == a.Name {
			byFile[j.m.File] = append(byFile[j.m.File], j)
		}
	}
	if len(byFile) == 0 {
		return nil, nil
	}
	pkgDir := strings.TrimPrefix(a.Package, "./")
	origs := map[string][]byte{}
	defer func() {
		for f, b := range origs {
			os.WriteFile(filepath.Join(w.dir, f), b, 0o644)
		}
		os.Remove(filepath.Join(w.dir, pkgDir, schemaSwitchFile))
	}()
	var pkgName string
	for f := range byFile {
		b, err := os.ReadFile(filepath.Join(w.dir, f))
		if err != nil {
			return nil, err
		}
		origs[f] = b
		if pkgName == "" {
			pf, err := parser.ParseFile(token.NewFileSet(), f, b, parser.PackageClauseOnly)
			if err != nil {
				return nil, err
			}
			pkgName = pf.Name.Name
		}
	}
	if err := os.WriteFile(filepath.Join(w.dir, pkgDir, schemaSwitchFile), mutation.SchemaSwitchFile(pkgName), 0o644); err != nil {
		return nil, err
	}

	skip := map[int]bool{}
	placedIn := map[string][]mutation.Placed{}
	write := func(f string) error {
		js := byFile[f]
		ms := make([]mutation.Mutant, len(js))
		ids := make([]int, len(js))
		for i, j := range js {
			ms[i], ids[i] = j.m, j.id
		}
		out, placed, err := mutation.GoSchema(f, origs[f], ms, ids, skip)
		if err != nil {
			return err
		}
		placedIn[f] = placed
		return os.WriteFile(filepath.Join(w.dir, f), out, 0o644)
	}
	for f := range byFile {
		if err := write(f); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		out, err := w.command(ctx, w.dir, "go", "test", "-c", "-vet=off", "-o", bin, a.Package)
		if err == nil {
			break
		}
		if attempt == 10 {
			return nil, fmt.Errorf("the schema of %s does not compile after %d rounds:\n%s", a.Name, attempt, tail(out))
		}
		// Leave out the mutants whose sites the errors fall in; an error
		// outside every site leaves out the whole file.
		changed := map[string]bool{}
		for _, e := range compileErr.FindAllStringSubmatch(out, -1) {
			line, _ := strconv.Atoi(e[2])
			for f := range byFile {
				if !strings.HasSuffix(e[1], f) && !strings.HasSuffix(f, "/"+filepath.Base(e[1])) {
					continue
				}
				hit := false
				for _, p := range placedIn[f] {
					if p.FirstLine <= line && line <= p.LastLine && !skip[p.ID] {
						skip[p.ID], hit, changed[f] = true, true, true
					}
				}
				if !hit {
					for _, p := range placedIn[f] {
						skip[p.ID], changed[f] = true, true
					}
				}
			}
		}
		if len(changed) == 0 {
			return nil, fmt.Errorf("the schema of %s does not compile:\n%s", a.Name, tail(out))
		}
		for f := range changed {
			if err := write(f); err != nil {
				return nil, err
			}
		}
	}
	s := &schema{bin: bin, pkgDir: pkgDir, placed: map[int]bool{}}
	for _, ps := range placedIn {
		for _, p := range ps {
			if !skip[p.ID] {
				s.placed[p.ID] = true
			}
		}
	}
	if out, err := w.runSchema(ctx, s, 0, 0); err != nil {
		return nil, fmt.Errorf("the schema of %s fails its tests with no mutant active: %w\n%s", a.Name, err, tail(out))
	}
	return s, nil
}

// runSchema runs the schema's tests with mutant id active, bounded by d
// (0: the workspace's timeout).
func (w *workspace) runSchema(ctx context.Context, s *schema, id int, d time.Duration) (string, error) {
	if d == 0 {
		d = w.timeout
	}
	return w.commandEnv(ctx, d, filepath.Join(w.dir, s.pkgDir), []string{mutation.SchemaEnv + "=" + strconv.Itoa(id)},
		s.bin, "-test.count=1", "-test.failfast", "-test.v")
}
