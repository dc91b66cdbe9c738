package initramfs

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"

	"github.com/hoplab/hoplab/vmtest/kernels"
)

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// testSpec returns a spec with a fake agent, two modules and one file.
func testSpec(t *testing.T) Spec {
	t.Helper()
	src := t.TempDir()
	return Spec{
		Init: writeFile(t, src, "agent", "#!agent", 0o755),
		Modules: []kernels.Module{
			{Name: "virtio_ring", Path: writeFile(t, src, "virtio_ring.ko", "ring", 0o644)},
			{Name: "virtio_net", Path: writeFile(t, src, "virtio_net.ko", "net", 0o644)},
		},
		ModuleParams: map[string]string{"virtio_net": "napi_tx=1"},
		Files:        map[string]string{"/etc/hoplab/node.json": writeFile(t, src, "node.json", `{"name":"node1"}`, 0o600)},
		CacheDir:     t.TempDir(),
	}
}

// readArchive returns every entry's header and contents.
func readArchive(t *testing.T, p string) (map[string]*cpio.Header, map[string]string, []string) {
	t.Helper()
	hdrs := map[string]*cpio.Header{}
	data := map[string]string{}
	var order []string
	err := Walk(p, func(h *cpio.Header, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		name := "/" + h.Name
		hdrs[name], data[name] = h, string(b)
		order = append(order, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hdrs, data, order
}

func TestBuildLaysOutInitModulesAndFiles(t *testing.T) {
	spec := testSpec(t)
	p, err := Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	hdrs, data, order := readArchive(t, p)
	if got := data["/init"]; got != "#!agent" || hdrs["/init"].Mode.Perm() != 0o755 || !hdrs["/init"].Mode.IsRegular() {
		t.Errorf("/init = %q mode %o", got, hdrs["/init"].Mode)
	}
	if data["/lib/modules/virtio_net.ko"] != "net" || data["/lib/modules/virtio_ring.ko"] != "ring" {
		t.Errorf("modules not in the archive: %v", order)
	}
	if got, want := data[OrderFile], "virtio_ring\nvirtio_net napi_tx=1\n"; got != want {
		t.Errorf("%s = %q, want %q", OrderFile, got, want)
	}
	if data["/etc/hoplab/node.json"] != `{"name":"node1"}` || hdrs["/etc/hoplab/node.json"].Mode.Perm() != 0o600 {
		t.Errorf("extra file wrong: %q mode %o", data["/etc/hoplab/node.json"], hdrs["/etc/hoplab/node.json"].Mode)
	}
	for _, d := range []string{"/dev", "/proc", "/sys", "/run", "/tmp", "/etc", "/etc/hoplab", "/lib", "/lib/modules"} {
		h, ok := hdrs[d]
		if !ok || !h.Mode.IsDir() {
			t.Errorf("directory %s missing", d)
		}
	}
	// Every parent directory comes before its contents.
	for i, name := range order {
		if dir := filepath.Dir(name); dir != "/" && !slices.Contains(order[:i], dir) {
			t.Errorf("%s appears before its directory %s", name, dir)
		}
	}
}

func TestBuildIsCachedByContent(t *testing.T) {
	ctx := context.Background()
	spec := testSpec(t)
	p1, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	st1, err := os.Stat(p1)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Fatalf("same inputs gave two archives: %s, %s", p1, p2)
	}
	if st2, err := os.Stat(p2); err != nil || !os.SameFile(st1, st2) {
		t.Errorf("cache hit rewrote the archive")
	}
	// Touching a file without changing it is still a hit.
	future := time.Now().Add(time.Hour)
	os.Chtimes(spec.Init, future, future)
	if p3, err := Build(ctx, spec); err != nil || p3 != p1 {
		t.Errorf("touched but unchanged input: got %s, %v; want %s", p3, err, p1)
	}
	// Changing any input's content gives a new archive.
	writeFile(t, filepath.Dir(spec.Modules[1].Path), "virtio_net.ko", "net v2", 0o644)
	p4, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if p4 == p1 {
		t.Errorf("changed module content reused the old archive")
	}
	if _, data, _ := readArchive(t, p4); data["/lib/modules/virtio_net.ko"] != "net v2" {
		t.Errorf("rebuilt archive has the old module")
	}
	// Module order is an input too.
	spec.Modules[0], spec.Modules[1] = spec.Modules[1], spec.Modules[0]
	p5, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if p5 == p4 {
		t.Errorf("reordered modules reused the old archive")
	}
}

func TestBuildGzip(t *testing.T) {
	spec := testSpec(t)
	spec.Compression = CompressionGzip
	p, err := Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		t.Fatalf("not gzip: % x", raw[:4])
	}
	if _, data, _ := readArchive(t, p); data["/init"] != "#!agent" {
		t.Errorf("gzip archive lacks /init")
	}
}

func TestBuildRejectsBadSpecs(t *testing.T) {
	for name, mutate := range map[string]func(*Spec){
		"no init":           func(s *Spec) { s.Init = "" },
		"relative path":     func(s *Spec) { s.Files = map[string]string{"etc/x": s.Init} },
		"unclean path":      func(s *Spec) { s.Files = map[string]string{"/etc/../x": s.Init} },
		"overrides init":    func(s *Spec) { s.Files = map[string]string{"/init": s.Init} },
		"file as dir":       func(s *Spec) { s.Files = map[string]string{"/init/x": s.Init} },
		"bad module name":   func(s *Spec) { s.Modules = []kernels.Module{{Name: "../x", Path: s.Init}} },
		"dashed module":     func(s *Spec) { s.Modules = []kernels.Module{{Name: "sch-ingress", Path: s.Init}} },
		"module twice":      func(s *Spec) { s.Modules = append(s.Modules, s.Modules[0]) },
		"module, no path":   func(s *Spec) { s.Modules = []kernels.Module{{Name: "veth"}} },
		"directory as file": func(s *Spec) { s.Files = map[string]string{"/etc/d": t.TempDir()} },
	} {
		t.Run(name, func(t *testing.T) {
			spec := testSpec(t)
			mutate(&spec)
			if _, err := Build(context.Background(), spec); !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("got %v, want ErrInvalidSpec", err)
			}
		})
	}
	// A dynamically linked init is refused without its loader, and
	// accepted with what RuntimeFiles lists.
	dyn := dynamicELF()
	if dyn == "" {
		t.Fatal("no dynamically linked executable on the host")
	}
	spec := testSpec(t)
	spec.Init = dyn
	if _, err := Build(context.Background(), spec); !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("dynamic init %s: got %v", dyn, err)
	}
	rt, err := RuntimeFiles(dyn)
	if err != nil {
		t.Fatal(err)
	}
	spec.Files = rt
	if _, err := Build(context.Background(), spec); err != nil {
		t.Errorf("dynamic init %s with its runtime files: %v", dyn, err)
	}
	spec = testSpec(t)
	spec.Files = map[string]string{"/etc/missing": filepath.Join(t.TempDir(), "missing")}
	if _, err := Build(context.Background(), spec); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing host file: got %v", err)
	}
}

func TestBuildAgentIsStaticAndReused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go binary; skipped with -short")
	}
	t.Setenv("HOPLAB_CACHE", t.TempDir())
	ctx := context.Background()
	start := time.Now()
	p1, err := BuildAgent(ctx, "./testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	st1, err := os.Stat(p1)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	p2, err := BuildAgent(ctx, "./testdata/hello")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first build %v, rebuild with no change %v", first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	// The go command only touches an up-to-date -o target (same file,
	// new mtime) instead of relinking it.
	st2, err := os.Stat(p2)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 || !os.SameFile(st1, st2) {
		t.Errorf("unchanged agent was relinked (%s → %s)", p1, p2)
	}
	head := make([]byte, 4)
	f, err := os.Open(p1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if string(head) != "\x7fELF" {
		t.Errorf("agent is not an ELF binary")
	}
}

func TestPruneRemovesUnusedArchives(t *testing.T) {
	ctx := context.Background()
	spec := testSpec(t)
	old, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Compression = CompressionGzip
	fresh, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	other := writeFile(t, spec.CacheDir, "notes.txt", "keep", 0o644)
	past := time.Now().Add(-48 * time.Hour)
	for _, p := range []string{old, other} {
		os.Chtimes(p, past, past)
	}
	n, err := Prune(spec.CacheDir, 24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	for p, want := range map[string]bool{old: false, fresh: true, other: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", p, err == nil, want)
		}
	}
}

// dynamicELF returns a dynamically linked executable of the host, if any.
func dynamicELF() string {
	for _, p := range []string{"/bin/sh", "/bin/ls", "/usr/bin/env"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				f.Close()
				return p
			}
		}
		f.Close()
	}
	return ""
}
