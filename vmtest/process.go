package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// NewRunDir creates a run directory for sockets and artifacts, short enough
// for unix socket paths: $XDG_RUNTIME_DIR/hoplab/hl-XXXX when that is
// short, else /tmp/hl-XXXX.
func NewRunDir() (string, error) {
	base := os.TempDir()
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && len(x) < 40 {
		b := filepath.Join(x, "hoplab")
		if err := os.MkdirAll(b, 0o700); err == nil {
			base = b
		}
	}
	if len(base) > 40 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "hl-")
	if err != nil {
		return "", fmt.Errorf("create run dir: %w", err)
	}
	return dir, nil
}

// spawnRequest asks the spawner thread to start a command.
type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnRequest
)

// startWithDeathSignal starts cmd so that the kernel kills it with SIGKILL
// when this process dies. The parent-death signal fires when the thread
// that forked the child exits, so every child is forked from one goroutine
// locked to a thread that never exits.
func startWithDeathSignal(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread()
			// Never unlocked: the thread lives as long as the process.
			for r := range spawnCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// Own process group: a Ctrl-C on the terminal reaches the harness,
	// which tears the VMs down in order, not QEMU directly.
	cmd.SysProcAttr.Setpgid = true
	r := spawnRequest{cmd: cmd, done: make(chan error, 1)}
	spawnCh <- r
	return <-r.done
}

// killer is something a signal must tear down: a VM, a fabric.
type killer interface{ kill() }

// registry holds the live VMs and fabrics so that a signal can tear them
// all down.
var registry = struct {
	sync.Mutex
	vms map[killer]struct{}
}{vms: map[killer]struct{}{}}

func register(vm killer) {
	registry.Lock()
	registry.vms[vm] = struct{}{}
	registry.Unlock()
}

func unregister(vm killer) {
	registry.Lock()
	delete(registry.vms, vm)
	registry.Unlock()
}

// killWait bounds KillAll's wait for the killed QEMUs to be gone.
const killWait = 2 * time.Second

// KillAll kills every VM this process started and has not closed yet,
// removes their run directories unless artifacts are kept, and waits (at
// most two seconds) until the QEMUs are gone, their sockets with them, so
// that a process exiting right after leaves nothing running. It is for
// signal handlers; tests close their VMs instead.
func KillAll() {
	registry.Lock()
	vms := make([]killer, 0, len(registry.vms))
	for vm := range registry.vms {
		vms = append(vms, vm)
	}
	registry.Unlock()
	for _, vm := range vms {
		vm.kill()
	}
	deadline := time.After(killWait)
	for _, k := range vms {
		vm, ok := k.(*VM)
		if !ok || vm.cmd == nil || vm.cmd.Process == nil {
			continue
		}
		select {
		case <-vm.exited:
		case <-deadline:
			return
		}
	}
}
