package kernels

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Package roles inside a lock Entry.
const (
	// RoleImage is the package that ships the kernel image (linux-image-… or,
	// from 7.x, linux-binary-…). On older series it ships the modules too.
	RoleImage = "image"
	// RoleModules is the separate modules package of split kernels (linux-modules-…).
	RoleModules = "modules"
)

// ErrUnknownKernel is returned when a series or flavour is not in the lock.
var ErrUnknownKernel = errors.New("unknown kernel")

// ErrInvalidLock is returned when a lock file does not parse or fails validation.
var ErrInvalidLock = errors.New("invalid kernel lock")

// Lock is the parsed kernels.lock.json: the pinned packages of every
// catalogue kernel.
type Lock struct {
	// Comment is kept as-is when the lock is written back.
	Comment string `json:"comment,omitempty"`
	// Kernels holds one entry per series and flavour.
	Kernels []Entry `json:"kernels"`
}

// Entry pins one catalogue kernel (a series in one flavour).
type Entry struct {
	// Series is the kernel series, e.g. "6.1".
	Series string `json:"series"`
	// Flavour is "cloud" or "generic".
	Flavour string `json:"flavour"`
	// Suite is the Debian suite the packages come from, e.g. "bookworm-security".
	Suite string `json:"suite"`
	// Release is the kernel release string (uname -r), e.g. "6.1.0-56-cloud-amd64".
	Release string `json:"release"`
	// Packages lists the .debs that make up the kernel.
	Packages []Package `json:"packages"`
}

// Package pins one .deb.
type Package struct {
	// Role is RoleImage or RoleModules.
	Role string `json:"role"`
	// Name is the Debian package name.
	Name string `json:"name"`
	// Version is the Debian package version.
	Version string `json:"version"`
	// Filename is the path of the .deb inside the archive (the Packages
	// index's Filename field).
	Filename string `json:"filename"`
	// Size is the .deb's size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the hex sha256 of the .deb.
	SHA256 string `json:"sha256"`
}

// Key returns "series/flavour", the entry's name in messages.
func (e Entry) Key() string { return e.Series + "/" + e.Flavour }

// Version returns the version of the entry's image package.
func (e Entry) Version() string {
	for _, p := range e.Packages {
		if p.Role == RoleImage {
			return p.Version
		}
	}
	return ""
}

// dirName is the name of the entry's directory in the cache.
func (e Entry) dirName() string { return e.Release + "_" + e.Version() }

var (
	seriesRe  = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
	releaseRe = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~_-]*$`)
	pkgNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]+$`)
)

// Validate checks one entry: known flavour, well-formed names, exactly one
// image package, safe pool paths and 64-digit sha256 values.
func (e Entry) Validate() error {
	if !seriesRe.MatchString(e.Series) {
		return fmt.Errorf("%w: series %q is not MAJOR.MINOR", ErrInvalidLock, e.Series)
	}
	if e.Flavour != FlavourCloud && e.Flavour != FlavourGeneric {
		return fmt.Errorf("%w: %s: flavour %q is not %q or %q", ErrInvalidLock, e.Key(), e.Flavour, FlavourCloud, FlavourGeneric)
	}
	if e.Suite == "" || strings.ContainsAny(e.Suite, "/ ") {
		return fmt.Errorf("%w: %s: bad suite %q", ErrInvalidLock, e.Key(), e.Suite)
	}
	if !releaseRe.MatchString(e.Release) || !strings.HasPrefix(e.Release, e.Series+".") {
		return fmt.Errorf("%w: %s: release %q does not belong to series %s", ErrInvalidLock, e.Key(), e.Release, e.Series)
	}
	if len(e.Packages) == 0 {
		return fmt.Errorf("%w: %s: no packages", ErrInvalidLock, e.Key())
	}
	images := 0
	seen := map[string]bool{}
	for _, p := range e.Packages {
		switch p.Role {
		case RoleImage:
			images++
		case RoleModules:
		default:
			return fmt.Errorf("%w: %s: package %q has unknown role %q", ErrInvalidLock, e.Key(), p.Name, p.Role)
		}
		if seen[p.Role] {
			return fmt.Errorf("%w: %s: two %s packages", ErrInvalidLock, e.Key(), p.Role)
		}
		seen[p.Role] = true
		if !pkgNameRe.MatchString(p.Name) {
			return fmt.Errorf("%w: %s: bad package name %q", ErrInvalidLock, e.Key(), p.Name)
		}
		if !strings.HasSuffix(p.Name, "-"+e.Release) {
			return fmt.Errorf("%w: %s: package %s is not for release %s", ErrInvalidLock, e.Key(), p.Name, e.Release)
		}
		if p.Version == "" {
			return fmt.Errorf("%w: %s: package %s has no version", ErrInvalidLock, e.Key(), p.Name)
		}
		clean := path.Clean(p.Filename)
		if p.Filename == "" || clean != p.Filename || strings.HasPrefix(clean, "/") || strings.HasPrefix(clean, "..") || !strings.HasSuffix(clean, ".deb") {
			return fmt.Errorf("%w: %s: package %s has unsafe filename %q", ErrInvalidLock, e.Key(), p.Name, p.Filename)
		}
		if p.Size <= 0 {
			return fmt.Errorf("%w: %s: package %s has size %d", ErrInvalidLock, e.Key(), p.Name, p.Size)
		}
		if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 || p.SHA256 != strings.ToLower(p.SHA256) {
			return fmt.Errorf("%w: %s: package %s: sha256 %q is not 64 lowercase hex digits", ErrInvalidLock, e.Key(), p.Name, p.SHA256)
		}
	}
	if images != 1 {
		return fmt.Errorf("%w: %s: needs exactly one %s package", ErrInvalidLock, e.Key(), RoleImage)
	}
	return nil
}

// Validate checks every entry and that no series/flavour appears twice.
func (l *Lock) Validate() error {
	if len(l.Kernels) == 0 {
		return fmt.Errorf("%w: no kernels", ErrInvalidLock)
	}
	seen := map[string]bool{}
	for _, e := range l.Kernels {
		if err := e.Validate(); err != nil {
			return err
		}
		if seen[e.Key()] {
			return fmt.Errorf("%w: %s appears twice", ErrInvalidLock, e.Key())
		}
		seen[e.Key()] = true
	}
	return nil
}

// ParseLock parses and validates a lock file's contents. Unknown fields are
// rejected so that typos do not silently drop a pin.
func ParseLock(data []byte) (*Lock, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidLock, err)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// ReadLock reads and validates the lock file at path.
func ReadLock(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kernel lock: %w", err)
	}
	l, err := ParseLock(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// Marshal renders the lock as indented JSON with entries sorted by series
// and flavour, so rewrites give small diffs.
func (l *Lock) Marshal() ([]byte, error) {
	c := *l
	c.Kernels = append([]Entry(nil), l.Kernels...)
	sort.SliceStable(c.Kernels, func(i, j int) bool {
		a, b := c.Kernels[i], c.Kernels[j]
		if a.Series != b.Series {
			return compareSeries(a.Series, b.Series) < 0
		}
		return a.Flavour < b.Flavour
	})
	out, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal kernel lock: %w", err)
	}
	return append(out, '\n'), nil
}

// WriteFile validates the lock and writes it to path atomically.
func (l *Lock) WriteFile(path string) error {
	if err := l.Validate(); err != nil {
		return err
	}
	data, err := l.Marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o644)
}

// Lookup returns the entry for series and flavour. An empty series or
// flavour means the default.
func (l *Lock) Lookup(series, flavour string) (Entry, error) {
	if series == "" {
		series = DefaultSeries
	}
	if flavour == "" {
		flavour = DefaultFlavour
	}
	for _, e := range l.Kernels {
		if e.Series == series && e.Flavour == flavour {
			return e, nil
		}
	}
	var have []string
	for _, e := range l.Kernels {
		have = append(have, e.Key())
	}
	return Entry{}, fmt.Errorf("%w %s/%s (catalogue: %s)", ErrUnknownKernel, series, flavour, strings.Join(have, ", "))
}

// Replace swaps the entry with the same series and flavour for e.
func (l *Lock) Replace(e Entry) {
	for i := range l.Kernels {
		if l.Kernels[i].Key() == e.Key() {
			l.Kernels[i] = e
			return
		}
	}
	l.Kernels = append(l.Kernels, e)
}

// compareSeries orders "5.10" < "6.1" < "6.12" < "7.2".
func compareSeries(a, b string) int {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	if am != bm {
		return am - bm
	}
	return an - bn
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so readers never see a partial file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
