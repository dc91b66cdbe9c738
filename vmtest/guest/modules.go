package guest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ModulesDir is where the initramfs puts kernel modules.
const ModulesDir = "/lib/modules"

// ModuleOrderFile lists the modules to load, one per line, dependencies
// first (the initramfs builder writes it): a module name, whose file is
// [ModulesDir]/NAME.ko, or a file path (relative to ModulesDir) ending in
// .ko, .ko.xz or .ko.zst, followed by optional space-separated parameters
// ("bonding max_bonds=0"). Blank lines and lines starting with # are
// ignored. Without the file, every module file under ModulesDir is loaded.
const ModuleOrderFile = ModulesDir + "/hoplab.order"

// Module is a kernel module to load and its parameters.
type Module struct {
	// Path is the module file.
	Path string
	// Params is the parameter string given to finit_module.
	Params string
}

// Name is the module's name: its file name without the .ko suffixes, with
// dashes as underscores.
func (m Module) Name() string {
	n := filepath.Base(m.Path)
	if i := strings.Index(n, ".ko"); i >= 0 {
		n = n[:i]
	}
	return strings.ReplaceAll(n, "-", "_")
}

// ReadModuleOrder reads the module list of dir: its order file if present,
// else every module file in it.
func ReadModuleOrder(dir string) ([]Module, error) {
	f, err := os.Open(filepath.Join(dir, filepath.Base(ModuleOrderFile)))
	if errors.Is(err, os.ErrNotExist) {
		var mods []Module
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			n := d.Name()
			if !d.IsDir() && (strings.HasSuffix(n, ".ko") || strings.HasSuffix(n, ".ko.xz") || strings.HasSuffix(n, ".ko.zst")) {
				mods = append(mods, Module{Path: p})
			}
			return nil
		})
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return mods, err
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mods []Module
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		path, params, _ := strings.Cut(line, " ")
		if !strings.Contains(path, ".ko") {
			path += ".ko"
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		mods = append(mods, Module{Path: path, Params: strings.TrimSpace(params)})
	}
	return mods, s.Err()
}

// LoadModules loads mods in order with finit_module. The bonding module
// gets max_bonds=0 unless its parameters say otherwise, so that loading it
// does not create bond0. Modules whose dependencies are not loaded yet are
// retried after the others, so an imperfect order still works. It returns
// the names of the modules loaded.
func LoadModules(mods []Module) ([]string, error) {
	var loaded []string
	pending := mods
	for len(pending) > 0 {
		var retry []Module
		var lastErr error
		for _, m := range pending {
			err := loadModule(m)
			switch {
			case err == nil, errors.Is(err, unix.EEXIST):
				loaded = append(loaded, m.Name())
			case errors.Is(err, unix.ENOENT):
				// An unknown symbol: a dependency is missing so far.
				retry = append(retry, m)
				lastErr = err
			default:
				return loaded, err
			}
		}
		if len(retry) == len(pending) {
			return loaded, lastErr
		}
		pending = retry
	}
	return loaded, nil
}

func loadModule(m Module) error {
	params := m.Params
	if m.Name() == "bonding" && !strings.Contains(params, "max_bonds=") {
		params = strings.TrimSpace(params + " max_bonds=0")
	}
	f, err := os.Open(m.Path)
	if err != nil {
		return fmt.Errorf("load module %s: %w", m.Name(), err)
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(m.Path, ".xz") || strings.HasSuffix(m.Path, ".zst") {
		flags |= unix.MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), params, flags); err != nil {
		return fmt.Errorf("load module %s: %w", m.Name(), err)
	}
	return nil
}
