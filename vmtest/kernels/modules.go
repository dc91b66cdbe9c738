package kernels

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ulikunitz/xz"
)

// DefaultModules are the modules the guest agent needs; their dependencies
// are added by Fetch. Modules a kernel has built in are skipped.
var DefaultModules = []string{
	"virtio_pci",     // the transport of every virtio device (q35)
	"virtio_net",     // NICs
	"virtio_console", // the control channel (virtio-serial)
	"bonding",        // bond0
	"veth",           // pods
	"sch_ingress",    // clsact
	"cls_bpf",        // tc BPF programs
	"act_bpf",        // tc BPF actions
	"vxlan",          // tunnel mode
}

// ErrModuleNotFound is returned when a needed module is neither shipped as
// a module nor built into the kernel.
var ErrModuleNotFound = errors.New("kernel module not found")

// Module is one kernel module file to load in the guest.
type Module struct {
	// Name is the module name with underscores, e.g. "virtio_net".
	Name string `json:"name"`
	// Path is the uncompressed .ko file on the host.
	Path string `json:"path"`
}

// ModuleName turns a module file name or a name with dashes into the
// kernel's module name: "net/bonding/bonding.ko.xz" → "bonding",
// "sch-ingress" → "sch_ingress".
func ModuleName(file string) string {
	base := filepath.Base(file)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.TrimSuffix(base, ".ko")
	return strings.ReplaceAll(base, "-", "_")
}

// isModuleFile reports whether name is a (possibly compressed) .ko file.
func isModuleFile(name string) bool {
	return strings.HasSuffix(name, ".ko") || strings.HasSuffix(name, ".ko.xz") ||
		strings.HasSuffix(name, ".ko.zst") || strings.HasSuffix(name, ".ko.gz")
}

// readModule reads a module file, decompressing .ko.xz (pure Go), .ko.gz
// and .ko.zst (with the zstd program).
func readModule(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	return decompressModule(path, data)
}

// decompressModule returns the plain ELF of a module whose file name is name.
func decompressModule(name string, data []byte) ([]byte, error) {
	var r io.Reader
	switch {
	case strings.HasSuffix(name, ".xz"):
		xr, err := xz.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", filepath.Base(name), err)
		}
		r = xr
	case strings.HasSuffix(name, ".gz"):
		gr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", filepath.Base(name), err)
		}
		r = gr
	case strings.HasSuffix(name, ".zst"):
		cmd := exec.Command("zstd", "-dcq")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("decompress %s (needs the zstd program): %w", filepath.Base(name), err)
		}
		return out, nil
	default:
		return data, nil
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", filepath.Base(name), err)
	}
	return out, nil
}

// ModuleDepends returns the "depends=" list from a module's .modinfo section.
func ModuleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("parse module: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("parse module: no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("parse module .modinfo: %w", err)
	}
	var deps []string
	for _, kv := range bytes.Split(data, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok {
			continue
		}
		for _, d := range strings.Split(string(v), ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps = append(deps, ModuleName(d))
			}
		}
	}
	return deps, nil
}

// depsFunc returns the dependencies of module name, or builtin=true when
// the kernel has it built in. It returns ErrModuleNotFound for neither.
type depsFunc func(name string) (deps []string, builtin bool, err error)

// orderModules resolves want and their dependencies into a load order
// (dependencies first, otherwise in the order asked) and lists the wanted or
// needed modules that are built in.
func orderModules(want []string, deps depsFunc) (load, builtin []string, err error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " → "))
		}
		state[name] = visiting
		ds, isBuiltin, err := deps(name)
		if err != nil {
			if len(chain) > 0 {
				return fmt.Errorf("%s (needed by %s): %w", name, strings.Join(chain, " → "), err)
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		if isBuiltin {
			builtin = append(builtin, name)
		} else {
			for _, d := range ds {
				if err := visit(d, append(chain, name)); err != nil {
					return err
				}
			}
			load = append(load, name)
		}
		state[name] = done
		return nil
	}
	for _, w := range want {
		if err := visit(ModuleName(w), nil); err != nil {
			return nil, nil, err
		}
	}
	return load, builtin, nil
}

// moduleTree is a directory of kernel modules: a /lib/modules/<release>
// tree, or any directory holding .ko files.
type moduleTree struct {
	dir     string
	files   map[string]string   // module name → file
	builtin map[string]bool     // from modules.builtin
	dep     map[string][]string // from modules.dep, when present
	loaded  map[string][]byte   // decompressed modules read while resolving
	// assumeBuiltin treats missing modules as built in, because the tree
	// has no modules.builtin to tell (Debian's split 7.x packages, or a
	// user's directory of .ko files).
	assumeBuiltin bool
}

// openModuleTree indexes the modules under dir.
func openModuleTree(dir string) (*moduleTree, error) {
	t := &moduleTree{dir: dir, files: map[string]string{}, builtin: map[string]bool{}, loaded: map[string][]byte{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && isModuleFile(d.Name()) {
			name := ModuleName(d.Name())
			if _, dup := t.files[name]; !dup {
				t.files[name] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	t.assumeBuiltin = err != nil
	if err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				t.builtin[ModuleName(line)] = true
			}
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "modules.dep")); err == nil {
		t.dep = parseModulesDep(data)
	}
	return t, nil
}

// parseModulesDep parses depmod's modules.dep ("path: dep-path dep-path…").
func parseModulesDep(data []byte) map[string][]string {
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var deps []string
		for _, d := range strings.Fields(rest) {
			deps = append(deps, ModuleName(d))
		}
		out[ModuleName(mod)] = deps
	}
	return out
}

// deps implements depsFunc over the tree. modules.dep lists the full
// transitive closure, which orderModules handles just as well as the direct
// dependencies from .modinfo.
func (t *moduleTree) deps(name string) ([]string, bool, error) {
	file, ok := t.files[name]
	if !ok {
		if t.builtin[name] || t.assumeBuiltin {
			return nil, true, nil
		}
		return nil, false, ErrModuleNotFound
	}
	data, err := readModule(file)
	if err != nil {
		return nil, false, err
	}
	t.loaded[name] = data
	if d, ok := t.dep[name]; ok {
		return d, false, nil
	}
	d, err := ModuleDepends(data)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", file, err)
	}
	return d, false, nil
}

// collect resolves want in the tree and writes the modules, uncompressed,
// to dst/<name>.ko. It returns them in load order plus the built-in names.
func (t *moduleTree) collect(want []string, dst string) ([]Module, []string, error) {
	load, builtin, err := orderModules(want, t.deps)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, nil, fmt.Errorf("write modules: %w", err)
	}
	mods := make([]Module, 0, len(load))
	for _, name := range load {
		p := filepath.Join(dst, name+".ko")
		if err := os.WriteFile(p, t.loaded[name], 0o644); err != nil {
			return nil, nil, fmt.Errorf("write module %s: %w", name, err)
		}
		mods = append(mods, Module{Name: name, Path: p})
	}
	sort.Strings(builtin)
	return mods, builtin, nil
}
