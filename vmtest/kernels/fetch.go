package kernels

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hoplab/hoplab/internal/filelock"
)

// Kernel is a kernel ready to boot: its image, optionally an uncompressed
// vmlinux, and the modules the guest loads.
type Kernel struct {
	// Series is the catalogue series ("6.1"); for a user's kernel it is
	// derived from Version.
	Series string `json:"series"`
	// Flavour is the catalogue flavour, or "user" for FromPath kernels.
	Flavour string `json:"flavour"`
	// Version is the kernel release as uname -r prints it.
	Version string `json:"version"`
	// PackageVersion is the Debian package version ("6.1.192-2"); empty
	// for a user's kernel.
	PackageVersion string `json:"package_version,omitempty"`
	// Image is the bootable bzImage.
	Image string `json:"image"`
	// Vmlinux is the uncompressed ELF kernel with a PVH entry note, faster
	// to boot under TCG (QEMU -kernel accepts it). Empty when the kernel
	// has no PVH entry; boot Image then.
	Vmlinux string `json:"vmlinux,omitempty"`
	// Config is the kernel's build configuration file, when known.
	Config string `json:"config,omitempty"`
	// Modules are the modules to load, in load order (dependencies first).
	Modules []Module `json:"modules"`
	// Builtin lists needed modules the kernel has built in (nothing to load).
	Builtin []string `json:"builtin,omitempty"`
	// Requested lists the module names Modules and Builtin were resolved from.
	Requested []string `json:"requested"`
	// Packages are the Debian packages the kernel came from (catalogue kernels).
	Packages []Package `json:"packages,omitempty"`
	// Dir is the kernel's directory in the cache.
	Dir string `json:"-"`
}

// BootImage returns the file to pass to QEMU -kernel: Vmlinux when there is
// one, else Image.
func (k *Kernel) BootImage() string {
	if k.Vmlinux != "" {
		return k.Vmlinux
	}
	return k.Image
}

// Resolver finds the newest packages of a catalogue kernel when its pin has
// left the mirror.
type Resolver interface {
	// Resolve returns a new entry for the same series, flavour and suite as
	// pinned, with the newest packages the archive offers.
	Resolve(ctx context.Context, pinned Entry) (Entry, error)
}

// Options tune Fetch. The zero value uses the defaults.
type Options struct {
	// CacheDir is the kernel cache; default CacheDir().
	CacheDir string
	// LockFile is the lock to read and update; default LockPath(CacheDir).
	LockFile string
	// ExtraModules are collected in addition to DefaultModules.
	ExtraModules []string
	// Mirrors are the archives to download from; default SystemMirrors().
	Mirrors *Mirrors
	// Resolver resolves stale pins; default an AptResolver over Mirrors.
	Resolver Resolver
	// Client downloads packages; default http.DefaultClient.
	Client *http.Client
	// Logger receives progress and warnings; default slog.Default().
	Logger *slog.Logger
	// Quiet suppresses download progress output.
	Quiet bool
}

// fetcher carries one Fetch call's settings.
type fetcher struct {
	cacheDir string
	lockFile string
	client   *http.Client
	log      *slog.Logger
	quiet    bool
	mirrors  Mirrors
	resolver Resolver
}

func newFetcher(opts Options) (*fetcher, error) {
	f := &fetcher{cacheDir: opts.CacheDir, lockFile: opts.LockFile, client: opts.Client, log: opts.Logger, quiet: opts.Quiet, resolver: opts.Resolver}
	if f.cacheDir == "" {
		d, err := CacheDir()
		if err != nil {
			return nil, err
		}
		f.cacheDir = d
	}
	if f.lockFile == "" {
		f.lockFile = LockPath(f.cacheDir)
	}
	if f.client == nil {
		f.client = http.DefaultClient
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if opts.Mirrors != nil {
		f.mirrors = *opts.Mirrors
	} else {
		f.mirrors = SystemMirrors()
	}
	if f.resolver == nil {
		f.resolver = &AptResolver{Mirrors: f.mirrors, Logger: f.log}
	}
	for _, d := range []string{f.cacheDir, filepath.Join(f.cacheDir, ".locks")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("kernel cache: %w", err)
		}
	}
	return f, nil
}

// Resolve returns the catalogue entry Fetch would fetch for series and
// flavour ("" means the default), without fetching: a quick check of a
// kernel named in a topology before anything boots.
func Resolve(series, flavour string, opts Options) (Entry, error) {
	f, err := newFetcher(opts)
	if err != nil {
		return Entry{}, err
	}
	lock, err := loadLock(f.lockFile)
	if err != nil {
		return Entry{}, err
	}
	return lock.Lookup(series, flavour)
}

// Fetch returns the catalogue kernel series/flavour ("" means the default),
// downloading, verifying and extracting it into the cache on first use.
// Later calls, also from other processes, return the cached kernel without
// network access. Its errors name the kernel ("fetch kernel 6.1/cloud:
// ...", "unknown kernel 0.1/cloud ...").
func Fetch(ctx context.Context, series, flavour string, opts Options) (*Kernel, error) {
	f, err := newFetcher(opts)
	if err != nil {
		return nil, err
	}
	lock, err := loadLock(f.lockFile)
	if err != nil {
		return nil, err
	}
	entry, err := lock.Lookup(series, flavour)
	if err != nil {
		return nil, err
	}
	want := wantedModules(opts.ExtraModules)
	if k, ok := loadCached(filepath.Join(f.cacheDir, entry.dirName()), want); ok {
		return k, nil
	}
	unlock, err := filelock.Lock(ctx, filepath.Join(f.cacheDir, ".locks", entry.Series+"-"+entry.Flavour+".lock"))
	if err != nil {
		return nil, fmt.Errorf("fetch kernel %s: %w", entry.Key(), err)
	}
	defer unlock()
	k, err := f.fetchLocked(ctx, entry, want)
	if err != nil {
		return nil, fmt.Errorf("fetch kernel %s: %w", entry.Key(), err)
	}
	return k, nil
}

// wantedModules is DefaultModules plus extra, normalised and deduplicated.
func wantedModules(extra []string) []string {
	var out []string
	for _, m := range append(slices.Clone(DefaultModules), extra...) {
		if n := ModuleName(m); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// fetchLocked does Fetch's work while holding the kernel's file lock.
func (f *fetcher) fetchLocked(ctx context.Context, entry Entry, want []string) (*Kernel, error) {
	resolved := false
	for {
		dir := filepath.Join(f.cacheDir, entry.dirName())
		k, ok := loadCached(dir, want)
		if ok {
			return k, nil
		}
		f.sweep(entry)
		if k != nil { // cached, but without some requested modules
			want = mergeNames(k.Requested, want)
		}
		debs, err := f.downloadAll(ctx, entry)
		if errors.Is(err, ErrGone) && !resolved {
			resolved = true
			newer, rerr := f.resolver.Resolve(ctx, entry)
			if rerr != nil {
				return nil, fmt.Errorf("%w; resolving the newest of the series in %s failed: %w", err, entry.Suite, rerr)
			}
			if err := newer.Validate(); err != nil {
				return nil, fmt.Errorf("resolved %s: %w", newer.Version(), err)
			}
			if newer.Series != entry.Series || newer.Flavour != entry.Flavour {
				return nil, fmt.Errorf("resolver returned %s", newer.Key())
			}
			f.log.Warn("pinned kernel has left the mirror; using the newest of its series and updating the lock",
				"kernel", entry.Key(), "pinned", entry.Version(), "release", entry.Release,
				"now", newer.Version(), "new_release", newer.Release, "lock", f.lockFile)
			entry = newer
			if err := f.updateLock(ctx, entry); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if k != nil {
			return f.addModules(ctx, k, entry, debs, want)
		}
		return f.extract(ctx, entry, debs, want)
	}
}

// sweep removes what killed processes left behind for entry: extraction
// directories and partial downloads. The caller holds entry's file lock, so
// nobody else is writing them.
func (f *fetcher) sweep(entry Entry) {
	pats := []string{filepath.Join(f.cacheDir, ".extract-"+entry.dirName()+"-*")}
	for _, p := range entry.Packages {
		d := debPath(f.cacheDir, p)
		pats = append(pats, filepath.Join(filepath.Dir(d), "."+filepath.Base(d)+".*"))
	}
	for _, pat := range pats {
		if m, err := filepath.Glob(pat); err == nil {
			for _, p := range m {
				_ = os.RemoveAll(p)
			}
		}
	}
}

// addModules extends a cached kernel with more modules in place: module
// files are renamed into modules/ one by one and the manifest is replaced
// atomically, so processes using the kernel's files are not disturbed.
func (f *fetcher) addModules(ctx context.Context, k *Kernel, entry Entry, debs []string, want []string) (*Kernel, error) {
	tmp, err := os.MkdirTemp(k.Dir, ".modules-")
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	mods, builtin, _, err := collectModules(ctx, debs, entry.Release, want, tmp, nil)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", entry.Release, err)
	}
	dst := filepath.Join(k.Dir, "modules")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	for i, m := range mods {
		p := filepath.Join(dst, filepath.Base(m.Path))
		if err := os.Rename(m.Path, p); err != nil {
			return nil, fmt.Errorf("kernel cache: %w", err)
		}
		mods[i].Path = p
	}
	k.Modules, k.Builtin, k.Requested = mods, builtin, want
	if err := writeManifest(k.Dir, k); err != nil {
		return nil, err
	}
	f.log.Info("kernel modules added", "kernel", entry.Key(), "modules", len(mods))
	return readManifest(k.Dir)
}

// mergeNames returns a followed by the names of b not in a.
func mergeNames(a, b []string) []string {
	out := slices.Clone(a)
	for _, n := range b {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// downloadAll makes sure every package of entry is in the cache, verified.
func (f *fetcher) downloadAll(ctx context.Context, entry Entry) ([]string, error) {
	base, err := f.mirrors.For(entry.Suite)
	if err != nil {
		return nil, err
	}
	var debs []string
	for _, p := range entry.Packages {
		d, err := f.ensureDeb(ctx, base, p)
		if err != nil {
			return nil, err
		}
		debs = append(debs, d)
	}
	return debs, nil
}

// updateLock replaces entry in the lock file, re-reading it under a file
// lock so concurrent updates of different kernels do not clobber each other.
func (f *fetcher) updateLock(ctx context.Context, entry Entry) error {
	unlock, err := filelock.Lock(ctx, filepath.Join(f.cacheDir, ".locks", "lockfile.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	lock, err := loadLock(f.lockFile)
	if err != nil {
		return err
	}
	lock.Replace(entry)
	if err := lock.WriteFile(f.lockFile); err != nil {
		// A read-only checked-in lock: keep the update in the cache instead.
		alt := filepath.Join(f.cacheDir, LockFileName)
		if alt == f.lockFile {
			return fmt.Errorf("update kernel lock: %w", err)
		}
		f.log.Warn("cannot update the kernel lock; writing the update to the cache", "lock", f.lockFile, "err", err, "instead", alt)
		if err := lock.WriteFile(alt); err != nil {
			return fmt.Errorf("update kernel lock: %w", err)
		}
		f.lockFile = alt
	}
	return nil
}

// manifestName marks a complete kernel directory.
const manifestName = "kernel.json"

// loadCached reads the manifest in dir. ok is true when the kernel is
// complete and provides all of want; a non-nil kernel with ok false means it
// is cached but needs more modules.
func loadCached(dir string, want []string) (*Kernel, bool) {
	k, err := readManifest(dir)
	if err != nil {
		return nil, false
	}
	for _, w := range want {
		if !slices.Contains(k.Requested, w) {
			return k, false
		}
	}
	return k, true
}

// readManifest loads dir/kernel.json and makes its paths absolute.
func readManifest(dir string) (*Kernel, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, err
	}
	var k Kernel
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, manifestName), err)
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	k.Dir = dir
	k.Image, k.Vmlinux, k.Config = abs(k.Image), abs(k.Vmlinux), abs(k.Config)
	for i := range k.Modules {
		k.Modules[i].Path = abs(k.Modules[i].Path)
	}
	for _, p := range append([]string{k.Image}, k.Vmlinux) {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	return &k, nil
}

// writeManifest stores k in dir with paths relative to dir.
func writeManifest(dir string, k *Kernel) error {
	c := *k
	rel := func(p string) string {
		if r, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	c.Image, c.Vmlinux, c.Config = rel(c.Image), rel(c.Vmlinux), rel(c.Config)
	if c.Vmlinux == "." {
		c.Vmlinux = ""
	}
	if c.Config == "." {
		c.Config = ""
	}
	c.Modules = slices.Clone(k.Modules)
	for i := range c.Modules {
		c.Modules[i].Path = rel(c.Modules[i].Path)
	}
	data, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return fmt.Errorf("write kernel manifest: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, manifestName), append(data, '\n'), 0o644)
}

var (
	modulesPathRe = regexp.MustCompile(`^(?:usr/)?lib/modules/([^/]+)/(.+)$`)
	bootFileRe    = regexp.MustCompile(`^boot/(vmlinuz|config)-(.+)$`)
)

// extract unpacks the kernel image, config and modules of entry from debs
// into a temporary directory, derives vmlinux and the module set, and
// renames the result into the cache.
func (f *fetcher) extract(ctx context.Context, entry Entry, debs []string, want []string) (*Kernel, error) {
	start := time.Now()
	final := filepath.Join(f.cacheDir, entry.dirName())
	tmp, err := os.MkdirTemp(f.cacheDir, ".extract-"+entry.dirName()+"-")
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	k := &Kernel{Series: entry.Series, Flavour: entry.Flavour, Version: entry.Release, PackageVersion: entry.Version(), Requested: want, Packages: entry.Packages}
	// Everything but the modules: the image and config, from /boot
	// (≤ 6.x packages) or the module directory (split 7.x packages).
	other := func(hdr *tar.Header, r io.Reader) error {
		var dst string
		if m := bootFileRe.FindStringSubmatch(hdr.Name); m != nil && m[2] == entry.Release {
			dst = filepath.Join(tmp, m[1])
		} else if m := modulesPathRe.FindStringSubmatch(hdr.Name); m != nil && m[1] == entry.Release && (m[2] == "vmlinuz" || m[2] == "config") {
			dst = filepath.Join(tmp, m[2])
		} else {
			return nil
		}
		return writeStream(dst, r)
	}
	var assumed bool
	k.Modules, k.Builtin, assumed, err = collectModules(ctx, debs, entry.Release, want, filepath.Join(tmp, "modules"), other)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", entry.Release, err)
	}
	if assumed && len(k.Builtin) > 0 {
		f.log.Warn("the kernel packages have no modules.builtin; assuming the modules they lack are built in",
			"kernel", entry.Release, "modules", k.Builtin)
	}
	k.Image = filepath.Join(tmp, "vmlinuz")
	if _, err := os.Stat(k.Image); err != nil {
		return nil, fmt.Errorf("extract: no kernel image for release %s in %v", entry.Release, baseNames(debs))
	}
	if _, err := os.Stat(filepath.Join(tmp, "config")); err == nil {
		k.Config = filepath.Join(tmp, "config")
	}
	vmlinux := filepath.Join(tmp, "vmlinux")
	switch err := ExtractVmlinux(ctx, k.Image, vmlinux); {
	case err == nil:
		k.Vmlinux = vmlinux
	case errors.Is(err, ErrNoPVH):
		f.log.Warn("kernel has no PVH entry; VMs will boot the compressed image", "kernel", entry.Release)
	default:
		f.log.Warn("cannot extract vmlinux; VMs will boot the compressed image", "kernel", entry.Release, "err", err)
	}
	if err := writeManifest(tmp, k); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(final); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	k, err = readManifest(final)
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	f.log.Info("kernel ready", "kernel", entry.Key(), "release", k.Version, "modules", len(k.Modules),
		"builtin", len(k.Builtin), "vmlinux", k.Vmlinux != "", "extract_took", time.Since(start).Round(time.Millisecond))
	return k, nil
}

// writeStream writes r to dst, creating parent directories.
func writeStream(dst string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return out.Close()
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
