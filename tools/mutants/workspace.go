package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hoplab/hoplab/datapath/compat"
)

// workspace is one worker's copy of the tree, with the datapath's test
// binary and the BPF objects of the unmutated source.
type workspace struct {
	dir     string
	timeout time.Duration
	// baseline is how long each package's unmutated tests took, build
	// included (the datapath's under ""); a mutant gets 3 times that plus
	// 10 s.
	baseline map[string]time.Duration
	// objects are the datapath's bpf2go objects; objDir holds the
	// object files the test binary loads.
	objects []bpfObject
	objDir  string
	dpTest  string
	// profile is the kernel the mutated objects are checked against.
	profile compat.Kernel
}

// bpfObject is one go:generate line of datapath/gen.go.
type bpfObject struct {
	ident, src string // "lxc", "bpf/bpf_lxc.c" (relative to datapath/)
	cflags     []string
	deps       map[string]bool // repository-relative files it includes
}

func newWorkspace(ctx context.Context, root, dir string, areas []Area, timeout time.Duration) (*workspace, error) {
	w := &workspace{dir: dir, timeout: timeout, objDir: filepath.Join(dir, ".mutant-objects"), baseline: map[string]time.Duration{}}
	if err := copyTree(ctx, root, dir); err != nil {
		return nil, err
	}
	for _, a := range areas {
		if a.Package != "" {
			start := time.Now()
			if out, err := w.goTest(ctx, a.Package); err != nil {
				return nil, fmt.Errorf("the unmutated tests of %s fail: %w\n%s", a.Package, err, tail(out))
			}
			w.baseline[a.Package] = time.Since(start)
			continue
		}
		if err := w.prepareBPF(ctx); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// copyTree copies the files git knows (tracked, and new ones it does not
// ignore) of root into dir.
func copyTree(ctx context.Context, root, dir string) error {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("list the tree's files: %w", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if rel == "" {
			continue
		}
		src, dst := filepath.Join(root, rel), filepath.Join(dir, rel)
		st, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := copyFile(src, dst, st.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var generateLine = regexp.MustCompile(`(?m)^//go:generate go tool bpf2go -cc clang -cflags "([^"]*)" -target bpfel .* (\w+) (bpf/\S+\.c)$`)

// prepareBPF reads the objects' build lines from datapath/gen.go, finds
// each one's included files, builds the unmutated objects and the
// datapath's test binary, and checks that the tests pass on them.
func (w *workspace) prepareBPF(ctx context.Context) error {
	gen, err := os.ReadFile(filepath.Join(w.dir, "datapath", "gen.go"))
	if err != nil {
		return err
	}
	for _, m := range generateLine.FindAllStringSubmatch(string(gen), -1) {
		o := bpfObject{ident: m[2], src: m[3], cflags: append(strings.Fields(m[1]), "-target", "bpfel")}
		deps, err := w.clang(ctx, append(o.cflags, "-MM", o.src)...)
		if err != nil {
			return fmt.Errorf("dependencies of %s: %w", o.src, err)
		}
		o.deps = map[string]bool{}
		for _, f := range strings.Fields(strings.ReplaceAll(deps, "\\\n", " "))[1:] {
			o.deps[filepath.ToSlash(filepath.Join("datapath", f))] = true
		}
		w.objects = append(w.objects, o)
	}
	if len(w.objects) == 0 {
		return errors.New("no bpf2go lines in datapath/gen.go")
	}
	if w.profile, err = compat.Lookup(compat.MinKernel); err != nil {
		return err
	}
	if err := os.MkdirAll(w.objDir, 0o755); err != nil {
		return err
	}
	for _, o := range w.objects {
		if _, err := w.compile(ctx, o); err != nil {
			return fmt.Errorf("the unmutated %s does not build: %w", o.src, err)
		}
	}
	w.dpTest = filepath.Join(w.dir, "datapath.test")
	if out, err := w.command(ctx, filepath.Join(w.dir), "go", "test", "-c", "-o", w.dpTest, "./datapath"); err != nil {
		return fmt.Errorf("build the datapath tests: %w\n%s", err, tail(out))
	}
	start := time.Now()
	if out, err := w.runDatapathTests(ctx); err != nil {
		return fmt.Errorf("the datapath tests fail on the unmutated objects: %w\n%s", err, tail(out))
	}
	w.baseline[""] = time.Since(start)
	return nil
}

// bounded returns ctx bounded for one mutant of pkg: three times its
// unmutated tests' time plus 10 s (a mutant may loop forever), at most the
// -timeout.
func (w *workspace) bounded(ctx context.Context, pkg string) (context.Context, context.CancelFunc) {
	d := 3*w.baseline[pkg] + 10*time.Second
	if d > w.timeout {
		d = w.timeout
	}
	return context.WithTimeout(ctx, d)
}

func (w *workspace) clang(ctx context.Context, args ...string) (string, error) {
	return w.command(ctx, filepath.Join(w.dir, "datapath"), "clang", args...)
}

// compile builds o into objDir as bpf2go names it (lxc_bpfel.o) and
// returns the path.
func (w *workspace) compile(ctx context.Context, o bpfObject) (string, error) {
	out := filepath.Join(w.objDir, o.ident+"_bpfel.o")
	if msg, err := w.clang(ctx, append(o.cflags, "-c", o.src, "-o", out)...); err != nil {
		return "", fmt.Errorf("%w: %s", err, firstLine(msg))
	}
	return out, nil
}

// slowDatapathTests are the datapath tests run only on mutants the others
// miss: the packet fuzzer takes seconds, the rest of the suite less.
const slowDatapathTests = "^TestFuzz"

// runDatapathTests runs the datapath's tests on the mutated objects: the
// quick ones first, and the slow ones only when those all pass.
func (w *workspace) runDatapathTests(ctx context.Context) (string, error) {
	env := []string{"HOPLAB_DATAPATH_OBJECTS=" + w.objDir}
	dir := filepath.Join(w.dir, "datapath")
	out, err := w.commandEnv(ctx, w.timeout, dir, env, w.dpTest, "-test.count=1", "-test.failfast", "-test.v", "-test.skip", slowDatapathTests)
	if err != nil {
		return out, err
	}
	return w.commandEnv(ctx, w.timeout, dir, env, w.dpTest, "-test.count=1", "-test.failfast", "-test.v", "-test.run", slowDatapathTests)
}

// goTest runs pkg's tests, without go vet: a mutant is judged by the
// tests alone, and vet would cost a second per mutant.
func (w *workspace) goTest(ctx context.Context, pkg string) (string, error) {
	return w.command(ctx, w.dir, "go", "test", "-vet=off", "-count=1", "-failfast", "-v", pkg)
}

func (w *workspace) command(ctx context.Context, dir, name string, args ...string) (string, error) {
	return w.commandEnv(ctx, w.timeout, dir, nil, name, args...)
}

// commandEnv runs name in dir with env added, bounded by timeout.
func (w *workspace) commandEnv(ctx context.Context, timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return buf.String() + "\ntimed out\n", errors.New("timed out")
	}
	return buf.String(), err
}

var failLine = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)

// killer names the test that failed in go test -v output: the deepest
// failing test (a subtest before its parent).
func killer(out string) string {
	m := failLine.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		if strings.Contains(out, "panic:") {
			return "panic"
		}
		if strings.HasSuffix(out, "\ntimed out\n") {
			return "timeout (a test hung)"
		}
		return "test binary failed: " + firstLine(tail(out))
	}
	return m[0][1]
}

// test runs j's mutant: from its area's schema when it is there, else by
// applying it in the workspace, running what should notice it and
// restoring the file.
func (w *workspace) test(ctx context.Context, j job, vm bool, s *schema) Outcome {
	if s.has(j.id) {
		start := time.Now()
		mctx, cancel := w.bounded(ctx, j.area.Package)
		defer cancel()
		out, err := w.runSchema(mctx, s, j.id, w.timeout)
		o := Outcome{Status: Survived}
		if err != nil {
			o = Outcome{Status: Killed, By: killer(out)}
		}
		o.Took = time.Since(start)
		return o
	}
	path := filepath.Join(w.dir, j.m.File)
	orig, err := os.ReadFile(path)
	if err != nil {
		return Outcome{Status: Stillborn, By: err.Error()}
	}
	mutated, err := j.m.Apply(orig)
	if err != nil {
		return Outcome{Status: Stillborn, By: err.Error()}
	}
	if err := os.WriteFile(path, mutated, 0o644); err != nil {
		return Outcome{Status: Stillborn, By: err.Error()}
	}
	defer func() {
		// The unmutated file, and its objects, for the next mutant.
		os.WriteFile(path, orig, 0o644)
		if j.area.Package == "" {
			for _, o := range w.objects {
				if o.deps[j.m.File] {
					w.compile(ctx, o)
				}
			}
		}
	}()
	start := time.Now()
	var o Outcome
	if j.area.Package == "" {
		o = w.testBPF(ctx, j, vm)
	} else {
		mctx, cancel := w.bounded(ctx, j.area.Package)
		out, err := w.goTest(mctx, j.area.Package)
		cancel()
		switch {
		case err == nil:
			o = Outcome{Status: Survived}
		case strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]"):
			o = Outcome{Status: Stillborn, By: "does not compile"}
		default:
			o = Outcome{Status: Killed, By: killer(out)}
		}
	}
	o.Took = time.Since(start)
	return o
}

func (w *workspace) testBPF(ctx context.Context, j job, vm bool) Outcome {
	rebuilt := false
	for _, o := range w.objects {
		if !o.deps[j.m.File] {
			continue
		}
		obj, err := w.compile(ctx, o)
		if err != nil {
			return Outcome{Status: Stillborn, By: "does not compile"}
		}
		rebuilt = true
		vs, err := compat.CheckFile(obj, w.profile)
		if err != nil {
			return Outcome{Status: Killed, By: "compat: " + err.Error()}
		}
		if len(vs) > 0 {
			return Outcome{Status: Killed, By: "compat (4.19): " + string(vs[0].Rule)}
		}
	}
	if !rebuilt {
		return Outcome{Status: Stillborn, By: "no object includes the file"}
	}
	mctx, cancel := w.bounded(ctx, "")
	out, err := w.runDatapathTests(mctx)
	cancel()
	if err != nil {
		return Outcome{Status: Killed, By: killer(out)}
	}
	if vm {
		return w.testBPFInVMs(ctx)
	}
	return Outcome{Status: Survived}
}

// testBPFInVMs runs the e2e suites with the mutated objects compiled into
// the workspace's agent.
func (w *workspace) testBPFInVMs(ctx context.Context) Outcome {
	dp := filepath.Join(w.dir, "datapath")
	var saved [][]byte
	for _, o := range w.objects {
		name := o.ident + "_bpfel.o"
		b, err := os.ReadFile(filepath.Join(dp, name))
		if err != nil {
			return Outcome{Status: Stillborn, By: err.Error()}
		}
		saved = append(saved, b)
		if err := copyFile(filepath.Join(w.objDir, name), filepath.Join(dp, name), 0o644); err != nil {
			return Outcome{Status: Stillborn, By: err.Error()}
		}
	}
	defer func() {
		for i, o := range w.objects {
			os.WriteFile(filepath.Join(dp, o.ident+"_bpfel.o"), saved[i], 0o644)
		}
	}()
	out, err := w.commandEnv(ctx, 20*time.Minute, w.dir, nil, "go", "run", "./e2e/runner")
	if err != nil {
		if m := regexp.MustCompile(`(?m)^\s*\[FAIL\] (.*)$`).FindStringSubmatch(out); m != nil {
			return Outcome{Status: Killed, By: "e2e: " + strings.TrimSpace(m[1])}
		}
		return Outcome{Status: Killed, By: "e2e: " + firstLine(tail(out))}
	}
	return Outcome{Status: Survived, By: "host tests and e2e"}
}

func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
