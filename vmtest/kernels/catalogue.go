package kernels

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Flavours of the catalogue kernels.
const (
	// FlavourCloud is Debian's -cloud-amd64 build: few drivers, quick to boot.
	FlavourCloud = "cloud"
	// FlavourGeneric is Debian's -amd64 build.
	FlavourGeneric = "generic"
)

// Defaults used when a series or flavour is left empty.
const (
	// DefaultSeries is the series booted when a topology names none.
	DefaultSeries = "6.1"
	// DefaultFlavour is the flavour booted when none is named (cloud boots fastest).
	DefaultFlavour = FlavourCloud
)

// Series lists the catalogue's kernel series, oldest first.
var Series = []string{"5.10", "6.1", "6.12", "7.2"}

// Flavours lists the catalogue's flavours.
var Flavours = []string{FlavourCloud, FlavourGeneric}

// LockFileName is the lock file's name, both in the source tree and in the cache.
const LockFileName = "kernels.lock.json"

//go:embed kernels.lock.json
var embeddedLock []byte

// DefaultLock returns the lock compiled into the binary.
func DefaultLock() (*Lock, error) {
	l, err := ParseLock(embeddedLock)
	if err != nil {
		return nil, fmt.Errorf("embedded %s: %w", LockFileName, err)
	}
	return l, nil
}

// LockPath returns the lock file Fetch reads and updates when no explicit
// path is given: $HOPLAB_KERNELS_LOCK, else the checked-in file when this
// package runs from its source tree, else kernels.lock.json in cacheDir
// (which may not exist yet; the embedded lock is then used and written there
// when it needs updating).
func LockPath(cacheDir string) string {
	if p := os.Getenv("HOPLAB_KERNELS_LOCK"); p != "" {
		return p
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		p := filepath.Join(filepath.Dir(file), LockFileName)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return filepath.Join(cacheDir, LockFileName)
}

// CurrentLock returns the lock Fetch would use with cacheDir ("" means
// CacheDir()): the file at LockPath, or the embedded lock when that file
// does not exist. `hoplab kernels list` uses it to show the catalogue.
func CurrentLock(cacheDir string) (*Lock, error) {
	if cacheDir == "" {
		d, err := CacheDir()
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	return loadLock(LockPath(cacheDir))
}

// loadLock reads the lock at path, falling back to the embedded lock when
// the file does not exist.
func loadLock(path string) (*Lock, error) {
	l, err := ReadLock(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultLock()
	}
	return l, err
}

// CacheRoot returns hoplab's cache root: $HOPLAB_CACHE, else
// $XDG_CACHE_HOME/hoplab, else ~/.cache/hoplab.
func CacheRoot() (string, error) {
	if p := os.Getenv("HOPLAB_CACHE"); p != "" {
		return filepath.Abs(p)
	}
	if p := os.Getenv("XDG_CACHE_HOME"); p != "" && filepath.IsAbs(p) {
		return filepath.Join(p, "hoplab"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("hoplab cache: set HOPLAB_CACHE or HOME: %w", err)
	}
	return filepath.Join(home, ".cache", "hoplab"), nil
}

// CacheDir returns the kernel cache directory, CacheRoot()/kernels.
func CacheDir() (string, error) {
	root, err := CacheRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "kernels"), nil
}
