package kernels

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckedInLockCoversTheCatalogue(t *testing.T) {
	lock, err := ReadLock(LockFileName)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Series {
		for _, f := range Flavours {
			e, err := lock.Lookup(s, f)
			if err != nil {
				t.Errorf("%s/%s: %v", s, f, err)
				continue
			}
			if (f == FlavourCloud) != strings.HasSuffix(e.Release, "-cloud-amd64") {
				t.Errorf("%s/%s: release %s does not match the flavour", s, f, e.Release)
			}
			for _, p := range e.Packages {
				if !strings.Contains(p.Name, e.Release) || !strings.Contains(p.Filename, "/"+p.Name+"_"+p.Version+"_amd64.deb") {
					t.Errorf("%s/%s: package %s %s does not match release %s or filename %s", s, f, p.Name, p.Version, e.Release, p.Filename)
				}
			}
		}
	}
	if len(lock.Kernels) != len(Series)*len(Flavours) {
		t.Errorf("lock has %d kernels, catalogue %d", len(lock.Kernels), len(Series)*len(Flavours))
	}
	// The default resolves, and the embedded copy is the checked-in file.
	if e, err := lock.Lookup("", ""); err != nil || e.Series != DefaultSeries || e.Flavour != DefaultFlavour {
		t.Errorf("default lookup: %+v, %v", e, err)
	}
	emb, err := DefaultLock()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := emb.Marshal()
	b, _ := lock.Marshal()
	if string(a) != string(b) {
		t.Errorf("embedded lock differs from %s", LockFileName)
	}
	// Marshal is stable: the checked-in file is already in canonical form.
	raw, _ := os.ReadFile(LockFileName)
	if string(raw) != string(b) {
		t.Errorf("%s is not in canonical form; rewrite it with Lock.WriteFile", LockFileName)
	}
}

func TestLookupUnknownNamesTheCatalogue(t *testing.T) {
	lock, _ := DefaultLock()
	_, err := lock.Lookup("4.19", "cloud")
	if !errors.Is(err, ErrUnknownKernel) || !strings.Contains(err.Error(), "6.1/cloud") {
		t.Errorf("got %v", err)
	}
}

func validEntry() Entry {
	return Entry{Series: "6.1", Flavour: "cloud", Suite: "bookworm-security", Release: "6.1.0-56-cloud-amd64",
		Packages: []Package{{Role: RoleImage, Name: "linux-image-6.1.0-56-cloud-amd64", Version: "6.1.192-2",
			Filename: "pool/updates/main/l/linux-signed-amd64/linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb",
			Size:     10, SHA256: strings.Repeat("ab", 32)}}}
}

func TestEntryValidateRejects(t *testing.T) {
	if err := validEntry().Validate(); err != nil {
		t.Fatalf("valid entry: %v", err)
	}
	for name, mutate := range map[string]func(*Entry){
		"bad series":        func(e *Entry) { e.Series = "6" },
		"bad flavour":       func(e *Entry) { e.Flavour = "rt" },
		"no suite":          func(e *Entry) { e.Suite = "" },
		"release of other":  func(e *Entry) { e.Release = "6.12.107+deb13-cloud-amd64" },
		"no packages":       func(e *Entry) { e.Packages = nil },
		"no image":          func(e *Entry) { e.Packages[0].Role = RoleModules },
		"unknown role":      func(e *Entry) { e.Packages[0].Role = "headers" },
		"two images":        func(e *Entry) { e.Packages = append(e.Packages, e.Packages[0]) },
		"short sha":         func(e *Entry) { e.Packages[0].SHA256 = "abcd" },
		"upper sha":         func(e *Entry) { e.Packages[0].SHA256 = strings.Repeat("AB", 32) },
		"escaping filename": func(e *Entry) { e.Packages[0].Filename = "../../etc/passwd.deb" },
		"absolute filename": func(e *Entry) { e.Packages[0].Filename = "/pool/x.deb" },
		"not a deb":         func(e *Entry) { e.Packages[0].Filename = "pool/x.tar" },
		"zero size":         func(e *Entry) { e.Packages[0].Size = 0 },
		"no version":        func(e *Entry) { e.Packages[0].Version = "" },
		"bad package name":  func(e *Entry) { e.Packages[0].Name = "Linux Image" },
		"other release":     func(e *Entry) { e.Packages[0].Name = "linux-image-6.1.0-55-cloud-amd64" },
	} {
		t.Run(name, func(t *testing.T) {
			e := validEntry()
			e.Packages = append([]Package(nil), e.Packages...)
			mutate(&e)
			if err := e.Validate(); !errors.Is(err, ErrInvalidLock) {
				t.Errorf("got %v, want ErrInvalidLock", err)
			}
		})
	}
}

func TestParseLockRejects(t *testing.T) {
	for name, text := range map[string]string{
		"not json":      `kernels:`,
		"unknown field": `{"kernels": [], "kernal": 1}`,
		"empty":         `{"kernels": []}`,
		"duplicate":     `{"kernels": [` + entryJSON + `,` + entryJSON + `]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseLock([]byte(text)); !errors.Is(err, ErrInvalidLock) {
				t.Errorf("got %v, want ErrInvalidLock", err)
			}
		})
	}
	if _, err := ParseLock([]byte(`{"kernels": [` + entryJSON + `]}`)); err != nil {
		t.Errorf("valid lock: %v", err)
	}
}

const entryJSON = `{"series": "6.1", "flavour": "cloud", "suite": "bookworm-security", "release": "6.1.0-56-cloud-amd64",
 "packages": [{"role": "image", "name": "linux-image-6.1.0-56-cloud-amd64", "version": "6.1.192-2",
   "filename": "pool/x/linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb", "size": 1,
   "sha256": "e7d02b943971edcb8790e256c02cfab3bca6c3d37c1bf25392a57c71300615ee"}]}`

func TestLockWriteFileRoundTrip(t *testing.T) {
	lock, _ := DefaultLock()
	e := validEntry()
	e.Packages[0].Version = "6.1.199-1"
	lock.Replace(e)
	p := filepath.Join(t.TempDir(), LockFileName)
	if err := lock.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLock(p)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := back.Lookup("6.1", "cloud")
	if got.Version() != "6.1.199-1" || len(back.Kernels) != len(lock.Kernels) {
		t.Errorf("round trip lost the update: %+v", got)
	}
	// An invalid lock is never written.
	lock.Kernels[0].Packages = nil
	if err := lock.WriteFile(p); !errors.Is(err, ErrInvalidLock) {
		t.Errorf("invalid lock written: %v", err)
	}
}
