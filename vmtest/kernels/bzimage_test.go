package kernels

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
)

func TestExtractVmlinuxFromSyntheticBzImage(t *testing.T) {
	dir := t.TempDir()
	vmlinux := fakeVmlinux(t, true)
	img := filepath.Join(dir, "bzImage")
	os.WriteFile(img, fakeBzImage(t, "6.1.0-test", vmlinux), 0o644)
	out := filepath.Join(dir, "vmlinux")
	if err := ExtractVmlinux(context.Background(), img, out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if string(got) != string(vmlinux) {
		t.Errorf("extracted %d bytes, want the %d-byte ELF", len(got), len(vmlinux))
	}
}

func TestExtractVmlinuxWithoutPVHNote(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "bzImage")
	os.WriteFile(img, fakeBzImage(t, "6.1.0-test", fakeVmlinux(t, false)), 0o644)
	out := filepath.Join(dir, "vmlinux")
	if err := ExtractVmlinux(context.Background(), img, out); !errors.Is(err, ErrNoPVH) {
		t.Errorf("got %v, want ErrNoPVH", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("vmlinux without PVH note was written")
	}
}

func TestExtractVmlinuxRejectsNonBzImages(t *testing.T) {
	dir := t.TempDir()
	good := fakeBzImage(t, "6.1.0-test", fakeVmlinux(t, true))
	for name, data := range map[string][]byte{
		"empty":          nil,
		"elf":            fakeVmlinux(t, true),
		"payload beyond": append([]byte(nil), good[:len(good)-40]...),
		"old protocol": func() []byte {
			b := append([]byte(nil), good...)
			b[offVersion], b[offVersion+1] = 0x04, 0x02
			return b
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(dir, "img")
			os.WriteFile(img, data, 0o644)
			if err := ExtractVmlinux(context.Background(), img, filepath.Join(dir, "out")); !errors.Is(err, ErrNotBzImage) {
				t.Errorf("got %v, want ErrNotBzImage", err)
			}
		})
	}
}

// TestExtractVmlinuxFromCachedKernels runs the extraction on every real
// kernel already in the cache (fetched by the vm-tagged tests or `hoplab
// kernels fetch`), and fetches the default kernel first when the cache has
// none, so it never passes without checking a real kernel.
func TestExtractVmlinuxFromCachedKernels(t *testing.T) {
	dir, err := CacheDir()
	if err != nil {
		testreq.Missing(t, fmt.Sprintf("no kernel cache: %v", err))
	}
	cached, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cached) == 0 {
		if _, err := Fetch(context.Background(), DefaultSeries, "", Options{Quiet: true}); err != nil {
			testreq.Missing(t, fmt.Sprintf("no kernel in %s and none could be fetched: %v", dir, err))
		}
		if cached, err = List(dir); err != nil || len(cached) == 0 {
			t.Fatalf("fetched the default kernel, but the cache lists %d kernels (%v)", len(cached), err)
		}
	}
	for _, c := range cached {
		t.Run(c.Version, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "vmlinux")
			start := time.Now()
			if err := ExtractVmlinux(context.Background(), c.Image, out); err != nil {
				t.Fatal(err)
			}
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d-byte vmlinux in %v", c.Version, st.Size(), time.Since(start).Round(time.Millisecond))
			if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
				t.Errorf("vmlinux is %v %v", f.Machine, f.Type)
			}
			data, _ := os.ReadFile(out)
			if rel := imageRelease(data); rel != c.Version {
				t.Errorf("banner release %q, want %q", rel, c.Version)
			}
			img, _ := os.ReadFile(c.Image)
			if rel := imageRelease(img); rel != c.Version {
				t.Errorf("bzImage header release %q, want %q", rel, c.Version)
			}
		})
	}
}
