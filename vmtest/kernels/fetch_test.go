package kernels

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hoplab/hoplab/internal/errtext"
)

// fakeKernelDeb builds a 6.1-shaped kernel package for release: a bzImage
// with a PVH vmlinux, its config, the guest's modules (one as .ko.xz) and
// a modules.builtin.
func fakeKernelDeb(t *testing.T, release string) (deb, vmlinux []byte) {
	t.Helper()
	vmlinux = fakeVmlinux(t, true)
	files := map[string][]byte{
		"./boot/vmlinuz-" + release:                     fakeBzImage(t, release, vmlinux),
		"./boot/config-" + release:                      []byte("CONFIG_BPF=y\n"),
		"./boot/System.map-" + release:                  []byte("ffffffff81000000 T _text\n"),
		"./lib/modules/" + release + "/modules.builtin": []byte("kernel/fs/ext4/ext4.ko\n"),
		"./usr/share/doc/linux-image/changelog.gz":      []byte("x"),
	}
	mods := map[string][]string{"virtio_console": {"virtio", "virtio_ring"}, "sch_ingress": nil, "cls_bpf": nil, "act_bpf": nil}
	for m, d := range deps61 {
		mods[m] = d
	}
	for m, d := range mods {
		p := "./lib/modules/" + release + "/kernel/drivers/" + m + ".ko"
		if m == "bonding" {
			files[p+".xz"] = xzBytes(t, fakeModule(t, m, d...))
			continue
		}
		files[p] = fakeModule(t, m, d...)
	}
	files["./lib/modules/"+release+"/kernel/drivers/unused.ko"] = fakeModule(t, "unused")
	return fakeDeb(t, files), vmlinux
}

// mirror is a fake Debian archive serving files by pool path.
type mirror struct {
	mu    sync.Mutex
	files map[string][]byte
	gets  atomic.Int32
	srv   *httptest.Server
}

func newMirror(t *testing.T) *mirror {
	m := &mirror{files: map[string][]byte{}}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		data, ok := m.files[strings.TrimPrefix(r.URL.Path, "/debian/")]
		m.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		m.gets.Add(1)
		w.Write(data)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mirror) mirrors() *Mirrors {
	return &Mirrors{Debian: m.srv.URL + "/debian", Security: m.srv.URL + "/debian"}
}

// entryFor pins deb as the 6.1 cloud kernel release.
func entryFor(release, version string, deb []byte) Entry {
	name := "linux-image-" + release
	return Entry{Series: "6.1", Flavour: FlavourCloud, Suite: "bookworm-security", Release: release,
		Packages: []Package{{Role: RoleImage, Name: name, Version: version,
			Filename: "pool/updates/main/l/linux-signed-amd64/" + name + "_" + version + "_amd64.deb",
			Size:     int64(len(deb)), SHA256: sha256Hex(deb)}}}
}

// testLock writes a lock holding e to a temp file.
func testLock(t *testing.T, e Entry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), LockFileName)
	if err := (&Lock{Comment: "test", Kernels: []Entry{e}}).WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFetchVerifiesExtractsAndCaches(t *testing.T) {
	m := newMirror(t)
	deb, vmlinux := fakeKernelDeb(t, "6.1.0-90-cloud-amd64")
	e := entryFor("6.1.0-90-cloud-amd64", "6.1.250-1", deb)
	m.files[e.Packages[0].Filename] = deb
	cache := t.TempDir()
	opts := Options{CacheDir: cache, LockFile: testLock(t, e), Mirrors: m.mirrors(), Quiet: true, Logger: testLogger(t),
		Resolver: failingResolver{t}}
	k, err := Fetch(context.Background(), "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if k.Series != "6.1" || k.Flavour != "cloud" || k.Version != "6.1.0-90-cloud-amd64" || k.PackageVersion != "6.1.250-1" {
		t.Errorf("kernel %+v", k)
	}
	if got, _ := os.ReadFile(k.Vmlinux); !bytes.Equal(got, vmlinux) || k.BootImage() != k.Vmlinux {
		t.Errorf("vmlinux %s not extracted", k.Vmlinux)
	}
	if got, _ := os.ReadFile(k.Config); string(got) != "CONFIG_BPF=y\n" {
		t.Errorf("config %q", got)
	}
	var names []string
	for _, mod := range k.Modules {
		names = append(names, mod.Name)
		if _, err := os.Stat(mod.Path); err != nil || filepath.Dir(mod.Path) != filepath.Join(k.Dir, "modules") {
			t.Errorf("module %s at %s: %v", mod.Name, mod.Path, err)
		}
	}
	want := []string{"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_ring", "virtio", "virtio_pci",
		"failover", "net_failover", "virtio_net", "virtio_console", "tls", "bonding", "veth",
		"sch_ingress", "cls_bpf", "act_bpf", "udp_tunnel", "ip6_udp_tunnel", "vxlan"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("modules\n got %v\nwant %v", names, want)
	}
	// The scratch tree is gone; only what the guest needs stays.
	if ents, _ := os.ReadDir(k.Dir); len(ents) != 5 { // vmlinuz vmlinux config modules kernel.json
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		t.Errorf("kernel dir holds %v", n)
	}

	// Cached: no network needed, same answer.
	m.srv.Close()
	k2, err := Fetch(context.Background(), "6.1", "cloud", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(k, k2) {
		t.Errorf("cached kernel differs:\n%+v\n%+v", k, k2)
	}

	// List reports it, pinned, with sizes.
	t.Setenv("HOPLAB_KERNELS_LOCK", opts.LockFile)
	list, err := List(cache)
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %v, %v", list, err)
	}
	if c := list[0]; !c.Pinned || c.Bytes == 0 || c.DebBytes != int64(len(deb)) || c.Version != k.Version {
		t.Errorf("List: %+v", c)
	}
}

func TestFetchExtraModulesExtendsTheCache(t *testing.T) {
	m := newMirror(t)
	deb, _ := fakeKernelDeb(t, "6.1.0-90-cloud-amd64")
	e := entryFor("6.1.0-90-cloud-amd64", "6.1.250-1", deb)
	m.files[e.Packages[0].Filename] = deb
	opts := Options{CacheDir: t.TempDir(), LockFile: testLock(t, e), Mirrors: m.mirrors(), Quiet: true, Logger: testLogger(t)}
	k1, err := Fetch(context.Background(), "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.ExtraModules = []string{"unused"}
	k, err := Fetch(context.Background(), "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if last := k.Modules[len(k.Modules)-1]; last.Name != "unused" {
		t.Errorf("extra module missing: %+v", k.Modules)
	}
	// Extended in place: the image and the earlier modules keep their paths.
	if k.Dir != k1.Dir || k.Vmlinux != k1.Vmlinux || k.Modules[0] != k1.Modules[0] {
		t.Errorf("kernel moved: %+v → %+v", k1, k)
	}
	if ents, _ := os.ReadDir(k.Dir); len(ents) != 5 {
		t.Errorf("scratch left in %s: %v", k.Dir, ents)
	}
	if m.gets.Load() != 1 {
		t.Errorf("deb downloaded %d times", m.gets.Load())
	}
	opts.ExtraModules = []string{"no_such_module"}
	if _, err := Fetch(context.Background(), "", "", opts); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("unknown module: %v", err)
	}
}

func TestFetchChecksumMismatchNamesTheFile(t *testing.T) {
	m := newMirror(t)
	deb, _ := fakeKernelDeb(t, "6.1.0-90-cloud-amd64")
	e := entryFor("6.1.0-90-cloud-amd64", "6.1.250-1", deb)
	m.files[e.Packages[0].Filename] = append([]byte(nil), deb...)
	m.files[e.Packages[0].Filename][len(deb)-1] ^= 0xff // tampered
	cache := t.TempDir()
	_, err := Fetch(context.Background(), "", "", Options{CacheDir: cache, LockFile: testLock(t, e), Mirrors: m.mirrors(), Quiet: true, Logger: testLogger(t)})
	var ce *ChecksumError
	if !errors.Is(err, ErrChecksum) || !errors.As(err, &ce) {
		t.Fatalf("got %v, want a ChecksumError", err)
	}
	if !strings.Contains(err.Error(), "linux-image-6.1.0-90-cloud-amd64_6.1.250-1_amd64.deb") || ce.Want != e.Packages[0].SHA256 {
		t.Errorf("error does not name the file and the pin: %v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "fetch kernel 6.1/cloud: linux-image-6.1.0-90-cloud-amd64_6.1.250-1_amd64.deb (from http://") || errtext.Repeated(msg) != "" {
		t.Errorf("error does not name the kernel, then the file, once: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(cache, "debs")); len(ents) != 0 {
		t.Errorf("tampered download left in the cache: %v", ents)
	}
}

func TestFetchRedownloadsACorruptCachedDeb(t *testing.T) {
	m := newMirror(t)
	deb, _ := fakeKernelDeb(t, "6.1.0-90-cloud-amd64")
	e := entryFor("6.1.0-90-cloud-amd64", "6.1.250-1", deb)
	m.files[e.Packages[0].Filename] = deb
	cache := t.TempDir()
	bad := append([]byte(nil), deb...)
	bad[100] ^= 1
	os.MkdirAll(filepath.Join(cache, "debs"), 0o755)
	os.WriteFile(debPath(cache, e.Packages[0]), bad, 0o644)
	if _, err := Fetch(context.Background(), "", "", Options{CacheDir: cache, LockFile: testLock(t, e), Mirrors: m.mirrors(), Quiet: true, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	if m.gets.Load() != 1 {
		t.Errorf("corrupt cached deb was not downloaded again")
	}
}

// testLogger sends log lines to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// fakeResolver answers with a fixed entry and counts calls.
type fakeResolver struct {
	entry Entry
	err   error
	calls int
}

func (f *fakeResolver) Resolve(_ context.Context, pinned Entry) (Entry, error) {
	f.calls++
	return f.entry, f.err
}

// failingResolver fails the test when asked.
type failingResolver struct{ t *testing.T }

func (f failingResolver) Resolve(context.Context, Entry) (Entry, error) {
	f.t.Errorf("resolver called for a pin that is still on the mirror")
	return Entry{}, errors.New("unexpected")
}

func TestFetchStalePinResolvesNewestAndUpdatesLock(t *testing.T) {
	m := newMirror(t)
	oldDeb, _ := fakeKernelDeb(t, "6.1.0-56-cloud-amd64")
	newDeb, _ := fakeKernelDeb(t, "6.1.0-58-cloud-amd64")
	pinned := entryFor("6.1.0-56-cloud-amd64", "6.1.192-2", oldDeb) // not on the mirror any more
	newer := entryFor("6.1.0-58-cloud-amd64", "6.1.201-1", newDeb)
	m.files[newer.Packages[0].Filename] = newDeb
	lockPath := testLock(t, pinned)
	var logs bytes.Buffer
	res := &fakeResolver{entry: newer}
	k, err := Fetch(context.Background(), "6.1", "cloud", Options{CacheDir: t.TempDir(), LockFile: lockPath,
		Mirrors: m.mirrors(), Resolver: res, Quiet: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != "6.1.0-58-cloud-amd64" || k.PackageVersion != "6.1.201-1" || res.calls != 1 {
		t.Errorf("got %s %s after %d resolves", k.Version, k.PackageVersion, res.calls)
	}
	lock, err := ReadLock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := lock.Lookup("6.1", "cloud"); !reflect.DeepEqual(got, newer) {
		t.Errorf("lock not updated: %+v", got)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "left the mirror") ||
		!strings.Contains(logs.String(), "pinned=6.1.192-2") || !strings.Contains(logs.String(), "now=6.1.201-1") {
		t.Errorf("no clear warning logged:\n%s", logs.String())
	}
}

func TestFetchStalePinResolverFailure(t *testing.T) {
	m := newMirror(t)
	deb, _ := fakeKernelDeb(t, "6.1.0-56-cloud-amd64")
	pinned := entryFor("6.1.0-56-cloud-amd64", "6.1.192-2", deb)
	lockPath := testLock(t, pinned)
	before, _ := os.ReadFile(lockPath)
	opts := Options{CacheDir: t.TempDir(), LockFile: lockPath, Mirrors: m.mirrors(), Quiet: true, Logger: testLogger(t),
		Resolver: &fakeResolver{err: errors.New("apt-get update failed")}}
	_, err := Fetch(context.Background(), "", "", opts)
	if !errors.Is(err, ErrGone) || !strings.Contains(err.Error(), "apt-get update failed") {
		t.Errorf("got %v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "fetch kernel 6.1/cloud: download linux-image-6.1.0-56-cloud-amd64 6.1.192-2 from http://") ||
		!strings.HasSuffix(msg, ".deb: package has left the mirror; resolving the newest of the series in bookworm-security failed: apt-get update failed") ||
		errtext.Repeated(msg) != "" {
		t.Errorf("error does not name the kernel and the package once: %v", err)
	}
	// A resolver answering with another series is refused.
	other := pinned
	other.Series, other.Release = "6.12", "6.12.9+deb13-cloud-amd64"
	opts.Resolver = &fakeResolver{entry: other}
	if _, err := Fetch(context.Background(), "", "", opts); err == nil {
		t.Errorf("resolver's wrong series accepted")
	}
	if after, _ := os.ReadFile(lockPath); !bytes.Equal(before, after) {
		t.Errorf("lock changed although nothing was resolved")
	}
}

func TestFetchConcurrentCallersShareOneDownload(t *testing.T) {
	m := newMirror(t)
	deb, _ := fakeKernelDeb(t, "6.1.0-90-cloud-amd64")
	e := entryFor("6.1.0-90-cloud-amd64", "6.1.250-1", deb)
	m.files[e.Packages[0].Filename] = deb
	opts := Options{CacheDir: t.TempDir(), LockFile: testLock(t, e), Mirrors: m.mirrors(), Quiet: true, Logger: testLogger(t)}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Fetch(context.Background(), "", "", opts)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if m.gets.Load() != 1 {
		t.Errorf("%d downloads for one kernel", m.gets.Load())
	}
}

func TestFetchUnknownKernel(t *testing.T) {
	_, err := Fetch(context.Background(), "4.19", "cloud", Options{CacheDir: t.TempDir(), Mirrors: &Mirrors{}})
	if !errors.Is(err, ErrUnknownKernel) {
		t.Errorf("got %v", err)
	}
}

func TestFetchSweepsLeftoversOfKilledFetches(t *testing.T) {
	m := newMirror(t)
	deb, _ := fakeKernelDeb(t, "6.1.0-90-cloud-amd64")
	e := entryFor("6.1.0-90-cloud-amd64", "6.1.250-1", deb)
	m.files[e.Packages[0].Filename] = deb
	cache := t.TempDir()
	staleExtract := filepath.Join(cache, ".extract-"+e.dirName()+"-123")
	staleDeb := filepath.Join(cache, "debs", ".linux-image-6.1.0-90-cloud-amd64_6.1.250-1_amd64.deb.456")
	os.MkdirAll(staleExtract, 0o755)
	os.MkdirAll(filepath.Dir(staleDeb), 0o755)
	os.WriteFile(staleDeb, []byte("partial"), 0o644)
	if _, err := Fetch(context.Background(), "", "", Options{CacheDir: cache, LockFile: testLock(t, e), Mirrors: m.mirrors(), Quiet: true, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{staleExtract, staleDeb} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}
