//go:build vm

package vmtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
)

// bootOptions returns the kernel and initramfs options of the VM tests.
func bootOptions(t *testing.T) []Option {
	t.Helper()
	testreq.Command(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	k, i := os.Getenv(EnvKernel), os.Getenv(EnvInitramfs)
	if k == "" || i == "" {
		testreq.Missing(t, "HOPLAB_KERNEL and HOPLAB_INITRAMFS")
	}
	return []Option{WithKernel(k), WithInitramfs(i)}
}

func TestBootUname(t *testing.T) {
	vm := StartT(t, append(bootOptions(t), WithReadyTimeout(30*time.Second))...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := vm.Uname(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := vm.Ready()
	t.Logf("uname -r %s; qemu start→ready %v; kernel uptime at ready %v; handover→ready %v; steps %v", u.Release, vm.BootTime(), r.Uptime, r.HandoverToReady(), r.Steps)
}
