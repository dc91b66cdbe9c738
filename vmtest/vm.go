package vmtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-qemu/qmp"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// VM is a running QEMU virtual machine with the hoplab agent in it.
type VM struct {
	opts    *Options
	log     *slog.Logger
	accel   Accel
	dir     string
	ownDir  bool
	keep    atomic.Bool
	cmd     *exec.Cmd
	cmdline string
	repro   string
	start   time.Time

	agent   *control.Client
	mon     *qmp.SocketMonitor
	qmpPath string

	readyOnce sync.Once
	readyCh   chan control.Ready
	ready     control.Ready
	readyAt   time.Duration
	fatalCh   chan string

	exited  chan struct{}
	exitErr error
	// stopping is set before hoplab itself ends QEMU (Close, Poweroff,
	// the signal handler): any other exit is a failure whose artifacts
	// are kept.
	stopping atomic.Bool

	console     tail
	trouble     tail
	consoleDone chan struct{}
	consoleFile *os.File
	agentTail   tail
	agentMu     sync.Mutex
	agentLog    *os.File

	relayMu sync.Mutex
	relays  []*Relay

	closeOnce sync.Once
	closeErr  error
}

// Start boots a VM and waits until its agent is ready. On failure nothing
// is left running and the error is a [*VMError] with the console tail; the
// run directory is kept, unless ctx ended (an interrupt keeps nothing).
func Start(ctx context.Context, opts ...Option) (*VM, error) {
	o, err := NewOptions(opts...)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vm %s: %w", o.Name, err)
	}
	vm := &VM{opts: o, log: o.Logger.With("vm", o.Name), readyCh: make(chan control.Ready, 1), fatalCh: make(chan string, 1),
		exited: make(chan struct{}), consoleDone: make(chan struct{})}
	vm.console.max, vm.agentTail.max, vm.trouble.max = ConsoleTailLines, 20, 8
	vm.accel = o.Accel
	if vm.accel == AccelAuto {
		vm.accel, _ = ProbeAccel(ctx, o)
	}
	if err := vm.boot(); err != nil {
		vm.keep.Store(true)
		vm.Close()
		return nil, vm.fail(err)
	}
	if err := vm.waitReady(ctx); err != nil {
		vm.keep.Store(ctx.Err() == nil)
		vm.Close()
		return nil, err
	}
	return vm, nil
}

func (vm *VM) path(suffix string) string {
	return filepath.Join(vm.dir, vm.opts.Name+suffix)
}

// Name is the VM's name.
func (vm *VM) Name() string { return vm.opts.Name }

// named prefixes err with the VM's name ("node1: configure: ..."), unless
// err is a [*VMError] of this VM, which names it already.
func (vm *VM) named(err error) error {
	var ve *VMError
	if errors.As(err, &ve) && ve.VM == vm.opts.Name {
		return err
	}
	return fmt.Errorf("%s: %w", vm.opts.Name, err)
}

// Dir is the VM's run directory (sockets and artifacts).
func (vm *VM) Dir() string { return vm.dir }

// Accel is the accelerator the VM runs on.
func (vm *VM) Accel() Accel { return vm.accel }

// Cmdline is the QEMU command line the VM was started with. It passes
// sockets as inherited descriptors; see [VM.ReproCmdline].
func (vm *VM) Cmdline() string { return vm.cmdline }

// ReproCmdline is an equivalent QEMU command line that runs by hand: the
// console on stdio, the QMP and control sockets as paths in the run dir.
func (vm *VM) ReproCmdline() string { return vm.repro }

// Ready is the agent's ready event.
func (vm *VM) Ready() control.Ready { return vm.ready }

// BootTime is the time from starting QEMU to the agent's ready event.
func (vm *VM) BootTime() time.Duration { return vm.readyAt }

// PID is QEMU's process id.
func (vm *VM) PID() int { return vm.cmd.Process.Pid }

// NICs are the VM's NICs (with their QEMU ids).
func (vm *VM) NICs() []*NIC { return vm.opts.NICs }

// Agent is the control client of the VM's agent. Methods a role adds are
// called with Agent().Call.
func (vm *VM) Agent() *control.Client { return vm.agent }

// ConsoleTail returns the last console lines.
func (vm *VM) ConsoleTail() string { return vm.console.String() }

// Exited is closed when QEMU has exited.
func (vm *VM) Exited() <-chan struct{} { return vm.exited }

// Err returns nil while QEMU runs, else a [*VMError] wrapping [ErrExited]
// with the console tail.
func (vm *VM) Err() error {
	select {
	case <-vm.exited:
		return vm.fail(fmt.Errorf("%w: %v", ErrExited, vm.exitErr))
	default:
		return nil
	}
}

// Kill kills QEMU with SIGKILL, as a crash would: the run directory is
// kept (see Close).
func (vm *VM) Kill() error {
	if vm.cmd == nil || vm.cmd.Process == nil {
		return nil
	}
	return vm.cmd.Process.Kill()
}

func (vm *VM) kill() {
	vm.stopping.Store(true)
	_ = vm.Kill()
	if vm.ownDir && !vm.keep.Load() && !KeepArtifacts() {
		os.RemoveAll(vm.dir)
	}
}

// KeepArtifacts keeps the run directory when the VM is closed.
func (vm *VM) KeepArtifacts() { vm.keep.Store(true) }

// Kept reports whether Close keeps the run directory.
func (vm *VM) Kept() bool { return vm.keep.Load() || KeepArtifacts() }

// Close stops QEMU (quit, then kill), closes the channels and removes the
// run directory it created unless artifacts are kept: on request, or
// because QEMU had ended by itself before (a guest panic, a kill); sockets
// are removed either way.
func (vm *VM) Close() error {
	vm.closeOnce.Do(func() {
		vm.stopping.Store(true)
		vm.relayMu.Lock()
		for _, r := range vm.relays {
			r.Close()
		}
		vm.relayMu.Unlock()
		if vm.cmd != nil && vm.cmd.Process != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if vm.mon != nil {
				_ = vm.Quit(ctx)
			}
			cancel()
			select {
			case <-vm.exited:
			default:
				_ = vm.Kill()
				<-vm.exited
			}
		}
		if vm.agent != nil {
			vm.agent.Close()
		}
		if vm.mon != nil {
			vm.mon.Disconnect()
		}
		if vm.cmd != nil && vm.cmd.Process != nil {
			<-vm.consoleDone
		}
		unregister(vm)
		vm.agentMu.Lock()
		if vm.agentLog != nil {
			vm.agentLog.Close()
			vm.agentLog = nil
		}
		vm.agentMu.Unlock()
		if vm.consoleFile != nil {
			vm.consoleFile.Close()
		}
		if vm.dir == "" {
			return
		}
		_ = os.Remove(vm.qmpPath)
		if vm.ownDir {
			if vm.Kept() {
				vm.log.Info("artifacts kept", "dir", vm.dir)
			} else {
				vm.closeErr = os.RemoveAll(vm.dir)
			}
		}
	})
	return vm.closeErr
}
