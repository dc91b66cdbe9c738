package vmtest

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var signalOnce sync.Once

// HandleSignals makes SIGINT and SIGTERM tear down every VM and fabric of
// this process (see [KillAll]) before the process dies of the signal.
// [StartT] and [StartFabricT] call it; commands call it once at start. QEMU
// also dies with its parent through a parent-death signal, so even SIGKILL
// leaves no QEMU behind.
func HandleSignals() {
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			s := <-ch
			KillAll()
			signal.Stop(ch)
			// Die of the signal as if nobody had caught it.
			_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
		}()
	})
}

// StartT starts a VM for a test: the console goes to the test log, the QEMU
// command line is logged, a start failure fails the test, and cleanup
// closes the VM, keeping its artifacts (printing their path) when the test
// failed or HOPLAB_KEEP is set.
func StartT(t testing.TB, opts ...Option) *VM {
	t.Helper()
	HandleSignals()
	opts = append([]Option{
		WithName(shortName(t.Name())),
		WithConsoleLine(func(l string) { t.Logf("console: %s", l) }),
	}, opts...)
	vm, err := Start(context.Background(), opts...)
	if err != nil {
		t.Fatalf("start VM: %v", err)
	}
	t.Logf("qemu: %s", vm.Cmdline())
	t.Logf("to reproduce by hand: %s", vm.ReproCmdline())
	t.Cleanup(func() {
		if t.Failed() {
			vm.KeepArtifacts()
		}
		vm.Close()
		if vm.Kept() {
			t.Logf("artifacts kept in %s", vm.Dir())
		}
	})
	return vm
}

// shortName turns a test name into a short file-name-safe VM name.
func shortName(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimPrefix(s, "Test")
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		}
		if b.Len() >= 12 {
			break
		}
	}
	if b.Len() == 0 {
		return "vm"
	}
	return b.String()
}

// StartFabricT starts a fabric for a test: consoles go to the test log,
// a start failure fails the test, and cleanup closes the fabric, keeping
// its run directory (and printing its path) when the test failed or
// HOPLAB_KEEP is set.
func StartFabricT(t testing.TB, spec FabricSpec) *Fabric {
	t.Helper()
	HandleSignals()
	if spec.ConsoleLine == nil {
		spec.ConsoleLine = func(vm, l string) { t.Logf("%s console: %s", vm, l) }
	}
	f, err := StartFabric(context.Background(), spec)
	if err != nil {
		t.Fatalf("start fabric: %v", err)
	}
	for _, vm := range f.VMs() {
		t.Logf("%s qemu: %s", vm.Name(), vm.Cmdline())
	}
	t.Cleanup(func() {
		if t.Failed() {
			f.KeepArtifacts()
		}
		f.Close()
		if f.Kept() {
			t.Logf("artifacts (console logs, agent messages, pcaps) kept in %s", f.Dir())
		}
	})
	return f
}
