package kernels

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Cached describes one kernel in the cache, for `hoplab kernels list`.
type Cached struct {
	// Kernel is the cached kernel as Fetch returns it.
	Kernel
	// Bytes is the size of the kernel's extracted directory.
	Bytes int64
	// DebBytes is the size of its cached .deb files.
	DebBytes int64
	// Pinned is true when the kernel is the one the lock currently pins.
	Pinned bool
}

// List reports the catalogue kernels in cacheDir ("" means CacheDir()),
// sorted by series and flavour, newest package first. Incomplete or foreign
// directories are skipped.
func List(cacheDir string) ([]Cached, error) {
	if cacheDir == "" {
		d, err := CacheDir()
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	ents, err := os.ReadDir(cacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	pinned := map[string]bool{}
	if lock, err := loadLock(LockPath(cacheDir)); err == nil {
		for _, e := range lock.Kernels {
			pinned[e.dirName()] = true
		}
	}
	var out []Cached
	for _, e := range ents {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		dir := filepath.Join(cacheDir, e.Name())
		k, err := readManifest(dir)
		if err != nil {
			continue
		}
		c := Cached{Kernel: *k, Bytes: dirSize(dir), Pinned: pinned[e.Name()]}
		for _, p := range k.Packages {
			if st, err := os.Stat(debPath(cacheDir, p)); err == nil {
				c.DebBytes += st.Size()
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Series != b.Series {
			return compareSeries(a.Series, b.Series) < 0
		}
		if a.Flavour != b.Flavour {
			return a.Flavour < b.Flavour
		}
		return CompareVersions(a.PackageVersion, b.PackageVersion) > 0
	})
	return out, nil
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
