//go:build vm

package vmtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
)

// TestGuestPanicFailsFast: a kernel that finds no init panics; QEMU ends at
// once (panic=-1, -no-reboot) and Start says so with the console tail.
func TestGuestPanicFailsFast(t *testing.T) {
	opts := append(bootOptions(t), WithName("panic"), WithAppend("rdinit=/nonexistent"), WithReadyTimeout(60*time.Second))
	start := time.Now()
	vm, err := Start(context.Background(), opts...)
	took := time.Since(start)
	if err == nil {
		vm.Close()
		t.Fatal("a guest without init started")
	}
	var ve *VMError
	if !errors.As(err, &ve) || !errors.Is(err, ErrExited) {
		t.Fatalf("error %v is not a VMError wrapping ErrExited", err)
	}
	defer os.RemoveAll(ve.Dir)
	if !strings.Contains(ve.ConsoleTail, "Kernel panic") {
		t.Errorf("console tail lacks the panic:\n%s", ve.ConsoleTail)
	}
	t.Logf("failed after %v with:\n%v", took, err)
	if took > 30*time.Second {
		t.Errorf("took %v to notice the panic", took)
	}
}

// TestGuestNeverReadyTimesOut: a guest that hangs (a panic without reboot)
// fails after the ready timeout with the console tail.
func TestGuestNeverReadyTimesOut(t *testing.T) {
	const timeout = 12 * time.Second
	opts := append(bootOptions(t), WithName("hang"), WithAppend("rdinit=/nonexistent", "panic=0"), WithReadyTimeout(timeout))
	start := time.Now()
	vm, err := Start(context.Background(), opts...)
	took := time.Since(start)
	if err == nil {
		vm.Close()
		t.Fatal("a hanging guest became ready")
	}
	var ve *VMError
	if !errors.As(err, &ve) || !errors.Is(err, ErrNotReady) {
		t.Fatalf("error %v is not a VMError wrapping ErrNotReady", err)
	}
	defer os.RemoveAll(ve.Dir)
	t.Logf("failed after %v with:\n%v", took, err)
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("took %v, want about %v", took, timeout)
	}
	if !strings.Contains(ve.ConsoleTail, "Kernel panic") {
		t.Errorf("console tail lacks the panic:\n%s", ve.ConsoleTail)
	}
}

// TestKilledQEMUIsReported: after QEMU is killed, agent calls fail with
// ErrExited and the console tail.
func TestKilledQEMUIsReported(t *testing.T) {
	vm := StartT(t, append(bootOptions(t), WithName("killed"))...)
	if err := vm.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := vm.Uname(ctx)
	if !errors.Is(err, ErrExited) {
		t.Fatalf("uname on a killed VM = %v, want ErrExited", err)
	}
	if !strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("error does not say how QEMU ended: %v", err)
	}
	if vm.Err() == nil {
		t.Error("Err() is nil after the kill")
	}
	t.Logf("reported: %v", err)
	// QEMU ended by itself (for hoplab): its run directory is kept, with
	// the console log, for the user to look at.
	dir := vm.Dir()
	vm.Close()
	defer os.RemoveAll(dir)
	if _, err := os.Stat(filepath.Join(dir, "killed.console.log")); err != nil {
		t.Errorf("the killed VM's artifacts were not kept: %v", err)
	}
}

const helperEnv = "HOPLAB_VMTEST_HELPER"

// TestHelperHoldsVM is not a test: the interrupt tests run it in a child
// process, which starts a VM, prints its QEMU pid and run dir, and waits to
// be killed.
func TestHelperHoldsVM(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestNoOrphanQEMU")
	}
	vm := StartT(t, append(bootOptions(t), WithName("held"), WithConsoleLine(func(string) {}))...)
	fmt.Printf("HELD pid=%d dir=%s\n", vm.PID(), vm.Dir())
	time.Sleep(2 * time.Minute)
}

// TestNoOrphanQEMU interrupts (SIGINT) and kills (SIGKILL) a test process
// holding a VM, and checks that no QEMU survives it and, after SIGINT, that
// its run directory is gone.
func TestNoOrphanQEMU(t *testing.T) {
	bootOptions(t) // fetch and build in this process, not in the child
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperHoldsVM$", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"=1")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			pid, dir := 0, ""
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), "HELD "); ok {
					fmt.Sscanf(rest, "pid=%d dir=%s", &pid, &dir)
					break
				}
			}
			if pid == 0 {
				t.Fatal("helper did not start its VM")
			}
			go func() {
				for sc.Scan() {
				}
			}()
			if !qemuRunning(pid) {
				t.Fatalf("QEMU %d not running while held", pid)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Logf("helper ended: %v", err)
			case <-time.After(15 * time.Second):
				t.Fatal("helper did not die")
			}
			deadline := time.Now().Add(5 * time.Second)
			for qemuRunning(pid) {
				if time.Now().After(deadline) {
					t.Fatalf("QEMU %d outlived its parent (%v)", pid, sig)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if left := qemusWithArg(dir); len(left) > 0 {
				t.Fatalf("QEMU processes of %s remain: %v", dir, left)
			}
			if sig == syscall.SIGINT {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("run dir %s left behind after SIGINT", dir)
				}
			} else {
				os.RemoveAll(dir) // SIGKILL leaves no chance to clean up files
			}
		})
	}
}

// qemuRunning reports whether pid exists and is not a zombie.
func qemuRunning(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z' && s[i+2] != 'X'
}

// qemusWithArg scans /proc for live QEMU processes whose command line
// mentions s.
func qemusWithArg(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(b), "qemu") || !strings.Contains(string(b), s) {
			continue
		}
		if qemuRunning(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestAgentFatalIsReported: an agent that cannot load a module sends the
// error on the control channel and powers off; Start reports the error.
func TestAgentFatalIsReported(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := PrepareBoot(ctx, BootSpec{ModuleParams: map[string]string{"bonding": "max_bonds=notanumber"}})
	if err != nil {
		t.Fatal(err)
	}
	vm, err := Start(ctx, append(b.Options(), WithName("fatal"), WithReadyTimeout(60*time.Second))...)
	if err == nil {
		vm.Close()
		t.Fatal("an agent with a broken module got ready")
	}
	var ve *VMError
	if !errors.As(err, &ve) || !errors.Is(err, ErrGuestFatal) || !strings.Contains(err.Error(), "bonding") {
		t.Fatalf("error %v does not carry the agent's fatal error", err)
	}
	os.RemoveAll(ve.Dir)
	t.Logf("reported:\n%v", err)
}

// TestKVMBootIsBounded boots under KVM the way the accelerator probe does:
// where KVM works the guest gets ready; where it cannot boot stock kernels
// (a paravirtual /dev/kvm) or there is no /dev/kvm at all, Start fails
// within the probe timeout with QEMU's reason instead of hanging, and keeps
// no QEMU running.
func TestKVMBootIsBounded(t *testing.T) {
	_, statErr := os.Stat("/dev/kvm")
	const timeout = 10 * time.Second
	start := time.Now()
	vm, err := Start(context.Background(), append(bootOptions(t), WithName("kvm"), WithAccel(AccelKVM), WithReadyTimeout(timeout))...)
	took := time.Since(start)
	if err == nil {
		if statErr != nil {
			vm.Close()
			t.Fatalf("a KVM boot got ready without /dev/kvm (%v)", statErr)
		}
		t.Logf("KVM boots here: ready in %v", vm.BootTime())
		vm.Close()
		return
	}
	var ve *VMError
	if !errors.As(err, &ve) {
		t.Fatalf("a failed KVM boot returned %T, want *VMError: %v", err, err)
	}
	if ve.Dir != "" {
		if pids := qemusWithArg(ve.Dir); len(pids) > 0 {
			t.Errorf("QEMU %v still runs after a failed KVM boot", pids)
		}
		os.RemoveAll(ve.Dir)
	}
	t.Logf("KVM cannot boot here (after %v):\n%v", took, err)
	if took > timeout+5*time.Second {
		t.Fatalf("a failing KVM boot took %v, want ≤ %v", took, timeout+5*time.Second)
	}
	if statErr != nil && !strings.Contains(strings.ToLower(err.Error()), "kvm") {
		t.Fatalf("without /dev/kvm the error does not say why: %v", err)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
