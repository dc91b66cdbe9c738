package initramfs

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cavaliergopher/cpio"

	"github.com/hoplab/hoplab/vmtest/kernels"
)

// Guest paths of the module files and their load-order manifest.
const (
	// ModulesDir is where modules are placed in the guest.
	ModulesDir = "/lib/modules"
	// OrderFile lists module names in load order, one per line, each
	// optionally followed by a space and its parameters; module NAME lives
	// at ModulesDir/NAME.ko.
	OrderFile = ModulesDir + "/hoplab.order"
	// InitPath is where Spec.Init is placed.
	InitPath = "/init"
)

// layoutVersion is part of every cache key; bump it when the archive layout
// changes so old cached archives are not reused.
const layoutVersion = "hoplab-initramfs-1"

// baseDirs are created in every archive (mount points and module dir).
var baseDirs = []string{"/dev", "/proc", "/sys", "/run", "/tmp", "/etc", "/root", "/lib", ModulesDir}

// ErrInvalidSpec is returned for a Spec that cannot be built.
var ErrInvalidSpec = errors.New("invalid initramfs spec")

// Compression selects how the archive is compressed.
type Compression int

const (
	// CompressionNone writes a plain cpio archive (the default: fastest to boot under TCG).
	CompressionNone Compression = iota
	// CompressionGzip gzips the archive.
	CompressionGzip
)

// String returns "none" or "gzip".
func (c Compression) String() string {
	if c == CompressionGzip {
		return "gzip"
	}
	return "none"
}

// Spec describes an initramfs.
type Spec struct {
	// Init is the host path of the static binary to run as /init.
	Init string
	// Modules are placed under /lib/modules in this order, which is the
	// load order written to /lib/modules/hoplab.order.
	Modules []kernels.Module
	// ModuleParams gives parameters for modules by name ("bonding":
	// "max_bonds=0"); they follow the name in hoplab.order.
	ModuleParams map[string]string
	// Files maps absolute guest paths to host files to include.
	Files map[string]string
	// Compression of the archive; default CompressionNone.
	Compression Compression
	// CacheDir holds built archives; default CacheDir().
	CacheDir string
}

// CacheDir returns the default directory for built archives,
// kernels.CacheRoot()/initramfs.
func CacheDir() (string, error) {
	root, err := kernels.CacheRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "initramfs"), nil
}

// entry is one file of the archive.
type entry struct {
	guest string // absolute, clean
	host  string // "" for directories and generated files
	data  []byte // generated contents
	mode  cpio.FileMode
	sum   string // content sha256
}

// Build writes the archive for spec (unless an identical one is cached) and
// returns its path.
func Build(ctx context.Context, spec Spec) (string, error) {
	entries, err := plan(spec)
	if err != nil {
		return "", err
	}
	key, err := cacheKey(ctx, spec.Compression, entries)
	if err != nil {
		return "", err
	}
	dir := spec.CacheDir
	if dir == "" {
		if dir, err = CacheDir(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("initramfs cache: %w", err)
	}
	name := key[:32] + ".cpio"
	if spec.Compression == CompressionGzip {
		name += ".gz"
	}
	out := filepath.Join(dir, name)
	if _, err := os.Stat(out); err == nil {
		now := time.Now()
		_ = os.Chtimes(out, now, now) // recently used; lets a pruner keep it
		return out, nil
	}
	if err := write(ctx, out, spec.Compression, entries); err != nil {
		return "", err
	}
	return out, nil
}

// plan validates spec and lists the archive's entries, directories first
// where needed, in a deterministic order.
func plan(spec Spec) ([]entry, error) {
	if spec.Init == "" {
		return nil, fmt.Errorf("%w: no Init binary", ErrInvalidSpec)
	}
	if err := checkRunnable(spec.Init, spec.Files); err != nil {
		return nil, err
	}
	files := map[string]entry{}
	add := func(e entry) error {
		if _, dup := files[e.guest]; dup {
			return fmt.Errorf("%w: %s is given twice", ErrInvalidSpec, e.guest)
		}
		files[e.guest] = e
		return nil
	}
	if err := add(entry{guest: InitPath, host: spec.Init, mode: cpio.TypeReg | 0o755}); err != nil {
		return nil, err
	}
	var order strings.Builder
	for _, m := range spec.Modules {
		name := kernels.ModuleName(m.Name)
		if name == "" || strings.ContainsAny(name, "/\n") || name != m.Name {
			return nil, fmt.Errorf("%w: bad module name %q", ErrInvalidSpec, m.Name)
		}
		if m.Path == "" {
			return nil, fmt.Errorf("%w: module %s has no path", ErrInvalidSpec, name)
		}
		if err := add(entry{guest: ModulesDir + "/" + name + ".ko", host: m.Path, mode: cpio.TypeReg | 0o644}); err != nil {
			return nil, err
		}
		order.WriteString(name)
		if p := strings.TrimSpace(spec.ModuleParams[name]); p != "" {
			order.WriteString(" " + p)
		}
		order.WriteString("\n")
	}
	for name, p := range spec.ModuleParams {
		if strings.ContainsAny(p, "\n\r") {
			return nil, fmt.Errorf("%w: parameters of module %s contain a newline", ErrInvalidSpec, name)
		}
	}
	if err := add(entry{guest: OrderFile, data: []byte(order.String()), mode: cpio.TypeReg | 0o644}); err != nil {
		return nil, err
	}
	for guest, host := range spec.Files {
		clean := path.Clean(guest)
		if !path.IsAbs(guest) || clean != guest || clean == "/" {
			return nil, fmt.Errorf("%w: guest path %q must be absolute and clean", ErrInvalidSpec, guest)
		}
		st, err := os.Stat(host)
		if err != nil {
			return nil, fmt.Errorf("initramfs file %s: %w", guest, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s (from %s) is not a regular file", ErrInvalidSpec, guest, host)
		}
		if err := add(entry{guest: guest, host: host, mode: cpio.TypeReg | cpio.FileMode(st.Mode().Perm())}); err != nil {
			return nil, err
		}
	}
	dirs := map[string]bool{}
	for _, d := range baseDirs {
		dirs[d] = true
	}
	for g := range files {
		for d := path.Dir(g); d != "/"; d = path.Dir(d) {
			if _, isFile := files[d]; isFile {
				return nil, fmt.Errorf("%w: %s is both a file and a directory", ErrInvalidSpec, d)
			}
			dirs[d] = true
		}
	}
	var out []entry
	for d := range dirs {
		out = append(out, entry{guest: d, mode: cpio.TypeDir | 0o755})
	}
	if dirs["/tmp"] {
		for i := range out {
			if out[i].guest == "/tmp" {
				out[i].mode = cpio.TypeDir | cpio.ModeSticky | 0o777
			}
		}
	}
	for _, f := range files {
		out = append(out, f)
	}
	// Sorting by path puts every directory before its contents.
	sort.Slice(out, func(i, j int) bool { return out[i].guest < out[j].guest })
	return out, nil
}

// checkRunnable rejects an ELF /init that needs a dynamic loader the
// archive does not carry (files, by guest path): the kernel would only say
// "no working init found". [RuntimeFiles] lists what such an init needs.
func checkRunnable(p string, files map[string]string) error {
	f, err := elf.Open(p)
	if err != nil {
		return nil // not ELF (or unreadable, reported later): nothing to check
	}
	defer f.Close()
	interp, err := interpreter(f)
	if err != nil {
		return fmt.Errorf("%w: init %s: %v", ErrInvalidSpec, p, err)
	}
	if interp != "" && files[interp] == "" {
		return fmt.Errorf("%w: init %s is dynamically linked and the archive lacks its loader %s (build it with CGO_ENABLED=0, or add initramfs.RuntimeFiles)", ErrInvalidSpec, p, interp)
	}
	return nil
}

// sumCache remembers file content hashes by path, size and mtime, so a test
// binary building many archives from one agent hashes it once.
var sumCache sync.Map // fileID → string

type fileID struct {
	path  string
	size  int64
	mtime time.Time
}

// fileSum returns the sha256 of a host file's contents.
func fileSum(ctx context.Context, p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	id := fileID{p, st.Size(), st.ModTime()}
	if s, ok := sumCache.Load(id); ok {
		return s.(string), nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", fmt.Errorf("hash %s: %w", p, err)
	}
	s := hex.EncodeToString(h.Sum(nil))
	sumCache.Store(id, s)
	return s, nil
}

// cacheKey hashes the layout version, compression and every entry's path,
// mode and content. It fills in each entry's sum.
func cacheKey(ctx context.Context, c Compression, entries []entry) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\ncompression=%s\n", layoutVersion, c)
	for i := range entries {
		e := &entries[i]
		switch {
		case e.host != "":
			s, err := fileSum(ctx, e.host)
			if err != nil {
				return "", fmt.Errorf("initramfs input %s: %w", e.guest, err)
			}
			e.sum = s
		case e.data != nil:
			sum := sha256.Sum256(e.data)
			e.sum = hex.EncodeToString(sum[:])
		}
		fmt.Fprintf(h, "%q %o %s\n", e.guest, uint32(e.mode), e.sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// write renders entries as newc cpio (optionally gzipped) into out,
// atomically.
func write(ctx context.Context, out string, c Compression, entries []entry) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".build-*")
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	var w io.Writer = bw
	var gz *gzip.Writer
	if c == CompressionGzip {
		gz = gzip.NewWriter(bw)
		w = gz
	}
	cw := cpio.NewWriter(w)
	epoch := time.Unix(0, 0)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
		hdr := &cpio.Header{Name: strings.TrimPrefix(e.guest, "/"), Mode: e.mode, ModTime: epoch}
		if e.mode.IsDir() {
			hdr.Links = 2
			if err := cw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("write initramfs %s: %w", e.guest, err)
			}
			continue
		}
		if e.data != nil {
			hdr.Size = int64(len(e.data))
			if err := cw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("write initramfs %s: %w", e.guest, err)
			}
			if _, err := cw.Write(e.data); err != nil {
				return fmt.Errorf("write initramfs %s: %w", e.guest, err)
			}
			continue
		}
		if err := copyFile(ctx, cw, hdr, e); err != nil {
			return err
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

// copyFile writes one host file into the archive, checking that its content
// still matches the hash the cache key was built from.
func copyFile(ctx context.Context, cw *cpio.Writer, hdr *cpio.Header, e entry) error {
	f, err := os.Open(e.host)
	if err != nil {
		return fmt.Errorf("initramfs input %s: %w", e.guest, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("initramfs input %s: %w", e.guest, err)
	}
	hdr.Size = st.Size()
	if err := cw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write initramfs %s: %w", e.guest, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(cw, h), ctxReader{ctx, f})
	if err != nil {
		return fmt.Errorf("write initramfs %s: %w", e.guest, err)
	}
	if n != hdr.Size || hex.EncodeToString(h.Sum(nil)) != e.sum {
		return fmt.Errorf("initramfs input %s (%s) changed while building", e.guest, e.host)
	}
	return nil
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read implements io.Reader.
func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Entries lists the paths in a built archive (for tests and `hoplab`
// debugging), in archive order.
func Entries(archive string) ([]string, error) {
	var names []string
	err := Walk(archive, func(hdr *cpio.Header, _ io.Reader) error {
		names = append(names, "/"+hdr.Name)
		return nil
	})
	return names, err
}

// Walk calls fn for every entry of a built archive (plain or gzipped).
func Walk(archive string, fn func(hdr *cpio.Header, r io.Reader) error) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("read initramfs: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("read initramfs %s: %w", archive, err)
		}
		defer gz.Close()
		r = gz
	}
	cr := cpio.NewReader(r)
	for {
		hdr, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read initramfs %s: %w", archive, err)
		}
		if err := fn(hdr, cr); err != nil {
			return err
		}
	}
}
