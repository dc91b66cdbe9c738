package vmtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hoplab/hoplab/internal/errtext"
)

// PrepareBoot names its operation once, whichever step fails; a missing
// HOPLAB_KERNEL image is named by its path.
func TestPrepareBootErrorNamesTheKernelOnce(t *testing.T) {
	image := filepath.Join(t.TempDir(), "bzImage")
	t.Setenv(EnvKernel, image)
	_, err := PrepareBoot(context.Background(), BootSpec{})
	errtext.Check(t, err, "prepare boot: HOPLAB_KERNEL: user kernel: open "+image+": no such file or directory")
}

// A VM's errors are prefixed with its name (as Fabric's configure step
// reports them), unless they name it already: a *VMError of that VM.
func TestVMNamedNamesTheVMOnce(t *testing.T) {
	vm := &VM{opts: &Options{Name: "node1"}}
	errtext.Check(t, vm.named(errors.New("configure: link eth0: no NIC with MAC 0a:00:00:00:00:01")),
		"node1: configure: link eth0: no NIC with MAC 0a:00:00:00:00:01")
	exited := fmt.Errorf("configure: %w", &VMError{VM: "node1", Err: fmt.Errorf("%w: signal: killed", ErrExited), ConsoleTail: "panic", Dir: "/run/x"})
	errtext.Check(t, vm.named(exited), "configure: vm node1: qemu exited: signal: killed\n--- console tail (/run/x) ---\npanic")
	other := fmt.Errorf("configure: %w", &VMError{VM: "tor", Err: ErrExited, ConsoleTail: "panic", Dir: "/run/x"})
	errtext.Check(t, vm.named(other), "node1: configure: vm tor: qemu exited\n--- console tail (/run/x) ---\npanic")
}

// A guest kernel panic is named on the error's first line with its reason.
func TestVMErrorNamesThePanic(t *testing.T) {
	console := "[  176.59] sysrq: Trigger a crash\n[  176.59] Kernel panic - not syncing: sysrq triggered crash\n[  176.60] CPU: 0 PID: 86"
	e := &VMError{VM: "node2", Err: fmt.Errorf("%w: exit status 0", ErrExited), ConsoleTail: console, Dir: "/run/x"}
	e.Panic = panicReason(e.ConsoleTrouble + "\n" + e.ConsoleTail)
	errtext.Check(t, e, "vm node2: qemu exited: guest kernel panic: sysrq triggered crash\n--- console tail (/run/x) ---\n"+console)
	if r := panicReason("[ 1.0] Oops: 0002\n"); r != "" {
		t.Errorf("panic reason of a console without a panic: %q", r)
	}
}
