package initramfs

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/errtext"
)

// TestRuntimeFilesOfADynamicBinary: a host binary linked against libc
// needs its loader and libc (and what libc needs), each at its own path.
func TestRuntimeFilesOfADynamicBinary(t *testing.T) {
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Fatal(err)
	}
	files, err := RuntimeFiles(ls)
	if err != nil {
		t.Fatal(err)
	}
	var loader, libc bool
	for guest, host := range files {
		if guest != host {
			t.Errorf("guest path %s differs from host path %s", guest, host)
		}
		loader = loader || strings.HasPrefix(filepath.Base(guest), "ld-linux-x86-64.so")
		libc = libc || filepath.Base(guest) == "libc.so.6"
	}
	if !loader || !libc {
		t.Errorf("files %v lack the loader (%v) or libc (%v)", files, loader, libc)
	}
}

// TestRuntimeFilesOfAStaticBinary: a static Go binary needs nothing; a
// file that is not an x86-64 ELF binary is refused with its path.
func TestRuntimeFilesOfAStaticBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/hello")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	files, err := RuntimeFiles(bin)
	if err != nil || len(files) != 0 {
		t.Errorf("static binary: %v, %v; want nothing", files, err)
	}
	if _, err := RuntimeFiles("runtime.go"); err == nil || !strings.Contains(err.Error(), "runtime.go") || errtext.Repeated(err.Error()) != "" {
		t.Errorf("a Go source file as agent: %v", err)
	}
}
