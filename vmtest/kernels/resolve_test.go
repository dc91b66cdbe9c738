package kernels

import (
	"fmt"
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"6.1.192-2", "6.1.192-2", 0},
		{"6.1.192-1", "6.1.192-2", -1},
		{"6.1.99-1", "6.1.192-1", -1},
		{"6.12.107-1", "6.12.94-1", 1},
		{"1:5.10.1-1", "6.1.1-1", 1},
		{"7.2~rc1-1", "7.2-1", -1},
		{"7.2-1", "7.2+b1-1", -1},
		{"7.2.12-1", "7.2.12-1+deb14u1", -1},
		{"1.0a-1", "1.0-1", 1},
		{"1.0", "1.0-0", 0},
		{"01.2", "1.02", 0},
	} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// stanza renders one Packages entry.
func stanza(name, version string) string {
	return fmt.Sprintf("Package: %s\nVersion: %s\nDescription: kernel\n a continuation line: with a colon\nFilename: pool/main/l/%s_%s_amd64.deb\nSize: 100\nSHA256: %s\n",
		name, version, name, version, strings.Repeat("c", 64))
}

func TestParsePackages(t *testing.T) {
	idx := stanza("linux-image-6.1.0-57-cloud-amd64", "6.1.199-1") + "\n" + stanza("linux-image-6.1.0-57-amd64", "6.1.199-1") +
		"\nPackage: no-file\nVersion: 1\n"
	ps := ParsePackages([]byte(idx))
	if len(ps) != 2 || ps[0].Name != "linux-image-6.1.0-57-cloud-amd64" || ps[0].Version != "6.1.199-1" ||
		ps[0].Size != 100 || ps[0].Filename != "pool/main/l/linux-image-6.1.0-57-cloud-amd64_6.1.199-1_amd64.deb" {
		t.Errorf("got %+v", ps)
	}
}

func TestNewestEntryPicksTheSeriesAndFlavour(t *testing.T) {
	lock, _ := DefaultLock()
	pinned, _ := lock.Lookup("6.1", "cloud")
	avail := ParsePackages([]byte(strings.Join([]string{
		stanza("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2"),
		stanza("linux-image-6.1.0-58-cloud-amd64", "6.1.201-1"),
		stanza("linux-image-6.1.0-58-cloud-amd64-dbg", "6.1.201-1"),
		stanza("linux-image-6.1.0-58-cloud-amd64-unsigned", "6.1.201-1"),
		stanza("linux-image-6.1.0-59-amd64", "6.1.205-1"),          // other flavour
		stanza("linux-image-6.1.0-59-rt-amd64", "6.1.205-1"),       // rt
		stanza("linux-image-6.12.9+deb12-cloud-amd64", "6.12.9-1"), // other series
		stanza("linux-image-6.1.0-57-cloud-amd64", "6.1.199-1"),
	}, "\n")))
	got, err := NewestEntry(pinned, avail)
	if err != nil {
		t.Fatal(err)
	}
	if got.Release != "6.1.0-58-cloud-amd64" || got.Version() != "6.1.201-1" || got.Suite != pinned.Suite ||
		len(got.Packages) != 1 || got.Packages[0].Role != RoleImage {
		t.Errorf("got %+v", got)
	}
	generic, _ := lock.Lookup("6.1", "generic")
	if got, err := NewestEntry(generic, avail); err != nil || got.Release != "6.1.0-59-amd64" {
		t.Errorf("generic: %+v, %v", got, err)
	}
}

func TestNewestEntrySplitPackages(t *testing.T) {
	lock, _ := DefaultLock()
	pinned, _ := lock.Lookup("7.2", "cloud")
	avail := ParsePackages([]byte(strings.Join([]string{
		stanza("linux-binary-7.2.14+deb14-cloud-amd64", "7.2.14-1"),
		stanza("linux-modules-7.2.14+deb14-cloud-amd64", "7.2.14-1"),
		stanza("linux-image-7.2.14+deb14-cloud-amd64", "7.2.14-1"), // the meta package
		stanza("linux-binary-7.2.12+deb14-cloud-amd64", "7.2.12-1"),
	}, "\n")))
	got, err := NewestEntry(pinned, avail)
	if err != nil {
		t.Fatal(err)
	}
	if got.Release != "7.2.14+deb14-cloud-amd64" || len(got.Packages) != 2 ||
		got.Packages[0].Name != "linux-binary-7.2.14+deb14-cloud-amd64" || got.Packages[1].Name != "linux-modules-7.2.14+deb14-cloud-amd64" {
		t.Errorf("got %+v", got)
	}
	// The modules package missing from the archive is an error, not half a kernel.
	if _, err := NewestEntry(pinned, avail[:1]); err == nil {
		t.Errorf("binary without modules accepted")
	}
	if _, err := NewestEntry(pinned, nil); err == nil {
		t.Errorf("empty archive accepted")
	}
}
