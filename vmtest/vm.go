package vmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// Errors a VM's start or calls can wrap.
var (
	// ErrNotReady means the agent did not report ready in time.
	ErrNotReady = errors.New("agent not ready in time")
	// ErrExited means QEMU exited (a guest panic ends QEMU, as does a kill).
	ErrExited = errors.New("qemu exited")
	// ErrGuestFatal means the agent reported a fatal error.
	ErrGuestFatal = errors.New("guest agent failed")
)

// ConsoleTailLines is how many console lines errors quote.
const ConsoleTailLines = 40

// VMError is a VM failure with what the guest said last.
type VMError struct {
	// VM is the VM's name.
	VM string
	// Err is the failure, wrapping one of the Err… sentinels.
	Err error
	// ConsoleTail is the end of the console log.
	ConsoleTail string
	// ConsoleTrouble holds the first console lines that reported a kernel
	// failure (panic, BUG, Oops) and the lines after them, when the
	// tail may have scrolled past them.
	ConsoleTrouble string
	// AgentTail holds the agent's last messages.
	AgentTail string
	// QEMUOutput is what QEMU itself printed (its errors).
	QEMUOutput string
	// Dir is the run directory holding the artifacts.
	Dir string
}

// Error implements error: the failure, then the console tail.
func (e *VMError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vm %s: %v", e.VM, e.Err)
	if e.QEMUOutput != "" {
		fmt.Fprintf(&b, "\n--- qemu ---\n%s", e.QEMUOutput)
	}
	if e.AgentTail != "" {
		fmt.Fprintf(&b, "\n--- agent's last messages ---\n%s", e.AgentTail)
	}
	if e.ConsoleTrouble != "" && !strings.Contains(e.ConsoleTail, e.ConsoleTrouble) {
		fmt.Fprintf(&b, "\n--- first kernel failure on the console ---\n%s", e.ConsoleTrouble)
	}
	fmt.Fprintf(&b, "\n--- console tail (%s) ---\n%s", e.Dir, e.ConsoleTail)
	return b.String()
}

// Unwrap returns the failure.
func (e *VMError) Unwrap() error { return e.Err }

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
// is left running and the error is a [*VMError] with the console tail.
func Start(ctx context.Context, opts ...Option) (*VM, error) {
	o, err := NewOptions(opts...)
	if err != nil {
		return nil, err
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
		vm.keep.Store(true)
		vm.Close()
		return nil, err
	}
	return vm, nil
}

func socketPair() (host *os.File, guest *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "guest"), nil
}

func (vm *VM) path(suffix string) string {
	return filepath.Join(vm.dir, vm.opts.Name+suffix)
}

func (vm *VM) boot() error {
	o := vm.opts
	vm.dir = o.Dir
	if vm.dir == "" {
		d, err := NewRunDir()
		if err != nil {
			return err
		}
		vm.dir, vm.ownDir = d, true
	}
	consolePath := o.ConsoleLog
	if consolePath == "" {
		consolePath = vm.path(".console.log")
	}
	var err error
	if vm.consoleFile, err = os.Create(consolePath); err != nil {
		return err
	}
	if vm.agentLog, err = os.Create(vm.path(".agent.jsonl")); err != nil {
		return err
	}

	conHost, conGuest, err := socketPair()
	if err != nil {
		return err
	}
	defer conGuest.Close()
	ctlHost, ctlGuest, err := socketPair()
	if err != nil {
		conHost.Close()
		return err
	}
	defer ctlGuest.Close()
	vm.qmpPath = vm.path(".qmp")
	if len(vm.qmpPath) > 107 {
		return fmt.Errorf("qmp socket path %s too long for a unix socket: use a shorter run dir", vm.qmpPath)
	}
	_ = os.Remove(vm.qmpPath)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: vm.qmpPath, Net: "unix"})
	if err != nil {
		return fmt.Errorf("qmp listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	qmpFile, err := ln.File()
	ln.Close()
	if err != nil {
		return fmt.Errorf("qmp listen: %w", err)
	}
	defer qmpFile.Close()

	devs := []Device{
		&serialConsole{socketChardev{file: conGuest}},
		&qmpMonitor{socketChardev{file: qmpFile, server: true}},
		&controlPort{socketChardev{file: ctlGuest}},
	}
	for _, n := range o.NICs {
		devs = append(devs, n)
	}
	devs = append(devs, o.Devices...)
	cl, err := vm.render(devs, false)
	if err != nil {
		return err
	}
	if repro, err := vm.render(devs, true); err == nil {
		vm.repro = o.QEMU + " " + repro.String()
	}
	vm.cmdline = o.QEMU + " " + cl.String()
	vm.log.Info("starting qemu", "accel", vm.accel, "cmdline", vm.cmdline)

	qemuLog, err := os.Create(vm.path(".qemu.log"))
	if err != nil {
		return err
	}
	defer qemuLog.Close()
	vm.cmd = exec.Command(o.QEMU, cl.Args...)
	vm.cmd.ExtraFiles = cl.Files
	vm.cmd.Stdout, vm.cmd.Stderr = qemuLog, qemuLog
	vm.start = time.Now()
	if err := startWithDeathSignal(vm.cmd); err != nil {
		conHost.Close()
		ctlHost.Close()
		return fmt.Errorf("start qemu: %w", err)
	}
	register(vm)
	go func() {
		err := vm.cmd.Wait()
		if err == nil {
			err = errors.New("exit status 0: the guest powered off, or reset (a panic resets with panic=-1)")
		}
		vm.exitErr = err
		close(vm.exited)
	}()

	conConn, err := net.FileConn(conHost)
	conHost.Close()
	if err != nil {
		close(vm.consoleDone)
		ctlHost.Close()
		return err
	}
	go vm.readConsole(conConn)

	ctlConn, err := net.FileConn(ctlHost)
	ctlHost.Close()
	if err != nil {
		return err
	}
	handlers := append([]control.EventHandler{vm.onEvent}, o.EventHandlers...)
	vm.agent = control.NewClient(ctlConn.(*net.UnixConn), handlers...)

	return vm.connectQMP()
}

func (vm *VM) render(devs []Device, repro bool) (*Cmdline, error) {
	o := vm.opts
	c := &Cmdline{Repro: repro, ReproDir: vm.dir}
	c.Add("-name", o.Name, "-pidfile", vm.path(".pid"), "-M", "q35", "-accel", string(vm.accel))
	if vm.accel == AccelKVM {
		c.Add("-cpu", "host")
	} else {
		// RDRAND seeds the kernel's random pool at once: without it the
		// agent's first getrandom blocks for seconds under TCG. No CX16:
		// QEMU 7.2's TCG corrupts EFLAGS around a per-CPU cmpxchg16b
		// interrupted on a busy host, and 6.12's SLUB fast path (which uses
		// it when present) double-faulted in a third of boots; without
		// the flag the kernel takes its emulated path. Not "max": 6.12
		// double-faults with it too.
		c.Add("-cpu", "qemu64,+rdrand,-cx16")
	}
	c.Add("-m", strconv.Itoa(o.MemoryMiB), "-smp", strconv.Itoa(o.CPUs),
		"-nographic", "-nodefaults", "-no-user-config", "-no-reboot",
		"-kernel", o.Kernel)
	if o.Initramfs != "" {
		c.Add("-initrd", o.Initramfs)
	}
	appendArgs := []string{DefaultAppend}
	if vm.accel != AccelKVM {
		appendArgs = append(appendArgs, TCGAppend)
	}
	c.Add("-append", strings.Join(append(appendArgs, o.Append...), " "))
	for _, d := range devs {
		if err := d.Render(c); err != nil {
			return nil, err
		}
	}
	c.Add(o.ExtraArgs...)
	return c, nil
}

func (vm *VM) connectQMP() error {
	type result struct {
		mon *qmp.SocketMonitor
		err error
	}
	ch := make(chan result, 1)
	go func() {
		mon, err := qmp.NewSocketMonitor("unix", vm.qmpPath, 5*time.Second)
		if err == nil {
			if err = mon.Connect(); err != nil {
				mon.Disconnect()
			}
		}
		ch <- result{mon, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			select {
			case <-vm.exited:
				return fmt.Errorf("%w during start: %v", ErrExited, vm.exitErr)
			case <-time.After(time.Second):
			}
			return fmt.Errorf("qmp connect: %w", r.err)
		}
		vm.mon = r.mon
		events, err := vm.mon.Events(context.Background())
		if err != nil {
			return fmt.Errorf("qmp events: %w", err)
		}
		go func() {
			// Drained so that QMP commands never block on an unread event.
			for e := range events {
				vm.log.Debug("qmp event", "event", e.Event, "data", e.Data)
			}
		}()
		return nil
	case <-vm.exited:
		return fmt.Errorf("%w during start: %v", ErrExited, vm.exitErr)
	case <-time.After(10 * time.Second):
		return errors.New("qmp connect: timeout")
	}
}

func (vm *VM) readConsole(c net.Conn) {
	defer close(vm.consoleDone)
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			vm.consoleFile.WriteString(line)
			l := ansiEscape.ReplaceAllString(strings.TrimRight(line, "\r\n"), "")
			vm.console.add(l)
			if vm.trouble.len() > 0 && vm.trouble.len() < vm.trouble.max {
				vm.trouble.add(l)
			} else if vm.trouble.len() == 0 && kernelTrouble.MatchString(l) {
				vm.trouble.add(l)
			}
			if vm.opts.ConsoleLine != nil {
				vm.opts.ConsoleLine(l)
			}
		}
		if err != nil {
			return
		}
	}
}

func (vm *VM) onEvent(m *control.Message) {
	vm.agentMu.Lock()
	if vm.agentLog != nil {
		b, _ := json.Marshal(struct {
			T time.Time `json:"t"`
			*control.Message
		}{time.Now(), m})
		vm.agentLog.Write(append(b, '\n'))
	}
	vm.agentMu.Unlock()
	switch m.Event {
	case control.EventReady:
		var r control.Ready
		if control.Unmarshal(m.Data, &r) == nil {
			vm.readyOnce.Do(func() { vm.readyCh <- r })
		}
		vm.agentTail.add("ready " + string(m.Data))
	case control.EventLog:
		var l control.Log
		_ = control.Unmarshal(m.Data, &l)
		vm.agentTail.add(l.Level + " " + l.Msg)
		vm.log.Debug("agent", "level", l.Level, "msg", l.Msg)
	case control.EventFatal:
		var f control.Fatal
		_ = control.Unmarshal(m.Data, &f)
		vm.agentTail.add("FATAL " + f.Error)
		select {
		case vm.fatalCh <- f.Error:
		default:
		}
	default:
		vm.agentTail.add(m.Event + " " + string(m.Data))
	}
}

func (vm *VM) waitReady(ctx context.Context) error {
	t := time.NewTimer(vm.opts.ReadyTimeout)
	defer t.Stop()
	select {
	case r := <-vm.readyCh:
		vm.ready = r
		vm.readyAt = time.Since(vm.start)
		vm.log.Info("agent ready", "kernel", r.Release, "since_qemu_start", vm.readyAt.Round(time.Millisecond),
			"uptime", r.Uptime.Round(time.Millisecond), "handover_to_ready", r.HandoverToReady().Round(time.Millisecond))
		return nil
	case msg := <-vm.fatalCh:
		return vm.fail(fmt.Errorf("%w: %s", ErrGuestFatal, msg))
	case <-vm.exited:
		// A fatal agent powers off right after saying why: prefer its word.
		select {
		case msg := <-vm.fatalCh:
			return vm.fail(fmt.Errorf("%w: %s", ErrGuestFatal, msg))
		case <-time.After(100 * time.Millisecond):
		}
		return vm.fail(fmt.Errorf("%w before the agent was ready: %v", ErrExited, vm.exitErr))
	case <-t.C:
		return vm.fail(fmt.Errorf("%w: no ready event after %v", ErrNotReady, vm.opts.ReadyTimeout))
	case <-ctx.Done():
		return vm.fail(fmt.Errorf("wait for agent: %w", ctx.Err()))
	}
}

// fail wraps err with the console and agent tails.
func (vm *VM) fail(err error) error {
	if err == nil {
		return nil
	}
	var ve *VMError
	if errors.As(err, &ve) {
		return err
	}
	// Give the console reader a moment to catch the last lines of a dying
	// guest.
	select {
	case <-vm.consoleDone:
	case <-time.After(100 * time.Millisecond):
	}
	e := &VMError{VM: vm.opts.Name, Err: err, ConsoleTail: vm.console.String(), ConsoleTrouble: vm.trouble.String(), AgentTail: vm.agentTail.String(), Dir: vm.dir}
	if b, rerr := os.ReadFile(filepath.Join(vm.dir, vm.opts.Name+".qemu.log")); rerr == nil && len(b) > 0 {
		e.QEMUOutput = strings.TrimSpace(string(b))
	}
	return e
}

// Name is the VM's name.
func (vm *VM) Name() string { return vm.opts.Name }

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

// Call calls an agent method; when QEMU has exited the error says so, with
// the console tail.
func (vm *VM) Call(ctx context.Context, method string, params, result any) error {
	err := vm.agent.Call(ctx, method, params, result)
	if err != nil && errors.Is(err, control.ErrClosed) {
		select {
		case <-vm.exited:
		case <-time.After(time.Second):
		}
		if e := vm.Err(); e != nil {
			return fmt.Errorf("%s: %w", method, e)
		}
	}
	return err
}

// Exec runs a command in the guest.
func (vm *VM) Exec(ctx context.Context, argv ...string) (control.ExecResult, error) {
	var r control.ExecResult
	err := vm.Call(ctx, control.MethodExec, control.Exec{Argv: argv}, &r)
	return r, err
}

// Uname returns the guest's uname fields.
func (vm *VM) Uname(ctx context.Context) (control.Uname, error) {
	var u control.Uname
	err := vm.Call(ctx, control.MethodUname, nil, &u)
	return u, err
}

// Configure applies a network configuration in the guest.
func (vm *VM) Configure(ctx context.Context, c control.Configure) error {
	return vm.Call(ctx, control.MethodConfigure, c, nil)
}

// QMP runs a QMP command and returns its raw response.
func (vm *VM) QMP(ctx context.Context, command string, args any) (json.RawMessage, error) {
	if vm.mon == nil {
		return nil, fmt.Errorf("vm %s: qmp not connected", vm.opts.Name)
	}
	b, err := json.Marshal(qmp.Command{Execute: command, Args: args})
	if err != nil {
		return nil, err
	}
	type result struct {
		out []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		out, err := vm.mon.Run(b)
		ch <- result{out, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("vm %s: qmp %s: %w", vm.opts.Name, command, r.err)
		}
		return r.out, nil
	case <-vm.exited:
		return nil, fmt.Errorf("qmp %s: %w", command, vm.Err())
	case <-ctx.Done():
		return nil, fmt.Errorf("vm %s: qmp %s: %w", vm.opts.Name, command, ctx.Err())
	}
}

// Status returns QEMU's run state ("running", "paused", ...).
func (vm *VM) Status(ctx context.Context) (string, error) {
	out, err := vm.QMP(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var r struct {
		Return struct {
			Status string `json:"status"`
		} `json:"return"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return "", fmt.Errorf("query-status: %w", err)
	}
	return r.Return.Status, nil
}

// SetLink sets the link state of NIC i (its index in the VM's NICs): down
// cuts it as if the cable were pulled, so the guest sees no carrier.
func (vm *VM) SetLink(ctx context.Context, i int, up bool) error {
	if i < 0 || i >= len(vm.opts.NICs) {
		return fmt.Errorf("vm %s: no NIC %d", vm.opts.Name, i)
	}
	_, err := vm.QMP(ctx, "set_link", map[string]any{"name": vm.opts.NICs[i].ID, "up": up})
	return err
}

// Poweroff asks the agent to power off and waits for QEMU to exit.
func (vm *VM) Poweroff(ctx context.Context) error {
	if err := vm.agent.Poweroff(ctx); err != nil {
		return fmt.Errorf("vm %s: %w", vm.opts.Name, err)
	}
	select {
	case <-vm.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vm %s: wait for poweroff: %w", vm.opts.Name, ctx.Err())
	}
}

// Quit ends QEMU through QMP and waits for it to exit.
func (vm *VM) Quit(ctx context.Context) error {
	select {
	case <-vm.exited:
		return nil
	default:
	}
	if _, err := vm.QMP(ctx, "quit", nil); err != nil && !errors.Is(err, ErrExited) {
		return err
	}
	select {
	case <-vm.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vm %s: wait for quit: %w", vm.opts.Name, ctx.Err())
	}
}

// Kill kills QEMU with SIGKILL.
func (vm *VM) Kill() error {
	if vm.cmd == nil || vm.cmd.Process == nil {
		return nil
	}
	return vm.cmd.Process.Kill()
}

func (vm *VM) kill() {
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
// run directory it created unless artifacts are kept; sockets are removed
// either way.
func (vm *VM) Close() error {
	vm.closeOnce.Do(func() {
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

// tail keeps the last lines of a stream.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(l string) {
	t.mu.Lock()
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
	t.mu.Unlock()
}

// String returns the kept lines.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// RSS returns QEMU's resident memory in bytes.
func (vm *VM) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", vm.PID()))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// ansiEscape matches the terminal control sequences firmware writes on the
// serial console.
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[A-Za-z=>])`)

// kernelTrouble matches the console line that starts a kernel failure report.
var kernelTrouble = regexp.MustCompile(`Kernel panic|BUG:|Oops|general protection fault|double fault|Unable to handle`)

func (t *tail) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.lines)
}
