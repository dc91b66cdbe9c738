package agent

import (
	"bufio"
	"bytes"
	"encoding/binary"
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
	compressed := strings.HasSuffix(m.Path, ".xz") || strings.HasSuffix(m.Path, ".zst")
	if !compressed {
		// Checking a signature costs about as much as the rest of loading
		// under TCG. Without it the kernel logs a warning and sets the E
		// taint once; a kernel that enforces signatures refuses, and the
		// signed file is loaded below.
		if data, err := os.ReadFile(m.Path); err == nil {
			if unsigned, ok := StripSignature(data); ok {
				err := unix.InitModule(unsigned, params)
				switch {
				case err == nil:
					return nil
				case errors.Is(err, unix.EEXIST), errors.Is(err, unix.ENOENT), errors.Is(err, unix.EINVAL):
					// The kernel's answer about the module itself, not about
					// its missing signature.
					return fmt.Errorf("load module %s: %w", m.Name(), err)
				}
			}
		}
	}
	f, err := os.Open(m.Path)
	if err != nil {
		return fmt.Errorf("load module %s: %w", m.Name(), err)
	}
	defer f.Close()
	flags := 0
	if compressed {
		flags |= unix.MODULE_INIT_COMPRESSED_FILE
	}
	if err := unix.FinitModule(int(f.Fd()), params, flags); err != nil {
		return fmt.Errorf("load module %s: %w", m.Name(), err)
	}
	return nil
}

// moduleSigMagic ends a module file with an appended signature.
const moduleSigMagic = "~Module signature appended~\n"

// StripSignature returns module without its appended signature, and
// whether it had one. The signature is followed by a 12-byte descriptor
// whose last four bytes are the signature's length (big endian), then the
// magic string.
func StripSignature(module []byte) ([]byte, bool) {
	if !bytes.HasSuffix(module, []byte(moduleSigMagic)) {
		return module, false
	}
	n := len(module) - len(moduleSigMagic)
	if n < 12 {
		return module, false
	}
	sigLen := int(binary.BigEndian.Uint32(module[n-4 : n]))
	end := n - 12 - sigLen
	if sigLen < 0 || end < 0 {
		return module, false
	}
	return module[:end], true
}
