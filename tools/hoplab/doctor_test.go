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

// TestDoctorFindsQEMU: a QEMU on PATH is named with its version.
func TestDoctorFindsQEMU(t *testing.T) {
	bin := t.TempDir()
	qemu := filepath.Join(bin, "qemu-system-x86_64")
	if err := os.WriteFile(qemu, []byte("#!/bin/sh\necho 'QEMU emulator version 9.9.9'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	stdout, _, _ := runCLI(t, "doctor")
	if want := "ok    qemu         " + qemu + " (QEMU emulator version 9.9.9)\n"; !strings.Contains(stdout, want) {
		t.Errorf("doctor output lacks %q:\n%s", want, stdout)
	}
	if !strings.Contains(stdout, "ok    tmp ") || !strings.Contains(stdout, "ok    disk ") {
		t.Errorf("tmp or disk check:\n%s", stdout)
	}
}
