package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctorSaysWhatIsMissing runs doctor on a machine made to lack QEMU
// (PATH), a kernel cache (empty HOPLAB_CACHE) and a writable TMPDIR: each
// missing piece is one line with the fix, and the command fails.
func TestDoctorSaysWhatIsMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("HOPLAB_CACHE", t.TempDir())
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	stdout, stderr, code := runCLI(t, "doctor")
	if code != 1 || strings.TrimSpace(stderr) != "hoplab: doctor: 2 check(s) failed" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"FAIL  qemu         qemu-system-x86_64 is not on PATH\n",
		"→ install QEMU: sudo apt-get install -y qemu-system-x86\n",
		"warn  kernel cache " + os.Getenv("HOPLAB_CACHE") + "/kernels: no kernel cached yet\n",
		"FAIL  tmp          ",
		"→ set TMPDIR to a writable folder\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestDoctorOnThisMachine: with QEMU installed (the test machines have
// it), the qemu check passes and names the binary.
func TestDoctorOnThisMachine(t *testing.T) {
	stdout, _, _ := runCLI(t, "doctor")
	if !strings.Contains(stdout, "ok    qemu         /") || !strings.Contains(stdout, "QEMU emulator version") {
		t.Errorf("qemu check:\n%s", stdout)
	}
	if !strings.Contains(stdout, "ok    tmp ") || !strings.Contains(stdout, "ok    disk ") {
		t.Errorf("tmp or disk check:\n%s", stdout)
	}
}
