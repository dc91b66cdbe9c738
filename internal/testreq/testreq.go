// Package testreq checks what a test needs from the machine (root, BPF,
// QEMU) and stops the test with a reason when it is missing.
//
// In CI (the CI environment variable is set) a missing requirement fails the
// test, because CI machines are expected to have everything; elsewhere the
// test is skipped and the skip message names what is missing.
package testreq

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI, where missing requirements
// are failures rather than skips.
func InCI() bool {
	return os.Getenv("CI") != ""
}

// Missing stops t because requirement is not met: a failure in CI, a skip
// with the reason elsewhere.
func Missing(t testing.TB, requirement string) {
	t.Helper()
	if InCI() {
		t.Fatalf("requirement not met in CI: %s", requirement)
	}
	t.Skipf("skipped: %s (set CI=1 to make this a failure)", requirement)
}

// Root requires the test to run as root (for BPF, tc and network namespaces).
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root for BPF and tc (run: sudo -E go test ...)")
	}
}

// Command requires an executable on PATH and returns its path.
func Command(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found on PATH ("+hint+")")
	}
	return p
}
