package initramfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// libDirs are where a dynamically linked x86-64 binary's libraries are
// looked for, in the dynamic loader's order on Debian and Ubuntu.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// RuntimeFiles returns what the x86-64 Linux binary at path needs to run as
// /init: nothing for a static binary; for a dynamically linked one (a
// `go install` with cgo), its program interpreter and every shared library
// it needs, directly or through other libraries, at the same paths in the
// guest as on the host (guest path → host path).
func RuntimeFiles(path string) (map[string]string, error) {
	f, closeF, err := openELF(path)
	if err != nil {
		return nil, fmt.Errorf("agent binary: %w", err)
	}
	defer closeF()
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("agent binary %s is %v %v, the guests are x86-64", path, f.Class, f.Machine)
	}
	interp, err := interpreter(f)
	if err != nil {
		return nil, fmt.Errorf("agent binary %s: %w", path, err)
	}
	if interp == "" {
		return map[string]string{}, nil
	}
	out := map[string]string{interp: interp}
	if _, err := os.Stat(interp); err != nil {
		return nil, fmt.Errorf("agent binary %s needs its interpreter: %w", path, err)
	}
	queue := []*elf.File{f}
	for len(queue) > 0 {
		libs, err := queue[0].ImportedLibraries()
		queue = queue[1:]
		if err != nil {
			return nil, fmt.Errorf("agent binary %s: its libraries: %w", path, err)
		}
		for _, lib := range libs {
			host, err := findLib(lib)
			if err != nil {
				return nil, fmt.Errorf("agent binary %s: %w", path, err)
			}
			if _, seen := out[host]; seen {
				continue
			}
			out[host] = host
			lf, closeLF, err := openELF(host)
			if err != nil {
				return nil, fmt.Errorf("agent binary %s: library: %w", path, err)
			}
			defer closeLF()
			queue = append(queue, lf)
		}
	}
	return out, nil
}

// findLib returns the host path of a shared library by its soname, with
// symlinks resolved into the file the guest gets at the soname's path.
func findLib(soname string) (string, error) {
	if filepath.IsAbs(soname) {
		return soname, nil
	}
	for _, d := range libDirs {
		p := filepath.Join(d, soname)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("shared library " + soname + " not found in " + fmt.Sprint(libDirs))
}

// openELF opens path as an ELF file and returns what closes it; its
// errors name path once.
func openELF(path string) (*elf.File, func(), error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, nil, err // "open PATH: ..."
	}
	f, err := elf.NewFile(r)
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, func() { r.Close() }, nil
}

// interpreter returns the program interpreter (dynamic loader) an ELF
// executable names, or "" for a static one.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil || len(b) < 2 {
			return "", fmt.Errorf("unreadable program interpreter (%d bytes): %v", len(b), err)
		}
		return string(b[:len(b)-1]), nil // NUL-terminated
	}
	return "", nil
}
