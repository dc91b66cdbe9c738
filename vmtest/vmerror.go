package vmtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	// Panic is the reason of the guest's kernel panic when the console
	// shows one ("sysrq triggered crash"), else empty.
	Panic string
	// QEMUOutput is what QEMU itself printed (its errors).
	QEMUOutput string
	// Dir is the run directory holding the artifacts.
	Dir string
}

// Error implements error: the failure, then the console tail.
func (e *VMError) Error() string {
	var b strings.Builder
	if e.Panic != "" && errors.Is(e.Err, ErrExited) {
		// The panic says why: QEMU's exit status adds nothing.
		fmt.Fprintf(&b, "vm %s: %v: guest kernel panic: %s", e.VM, ErrExited, e.Panic)
	} else {
		fmt.Fprintf(&b, "vm %s: %v", e.VM, e.Err)
	}
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

// VMName returns e.VM: a client that names the VM in its errors (such as
// nodeapi.Client) leaves an error that names it already as it is.
func (e *VMError) VMName() string { return e.VM }

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
	e.Panic = panicReason(e.ConsoleTrouble + "\n" + e.ConsoleTail)
	if b, rerr := os.ReadFile(filepath.Join(vm.dir, vm.opts.Name+".qemu.log")); rerr == nil && len(b) > 0 {
		e.QEMUOutput = strings.TrimSpace(string(b))
	}
	return e
}

// panicReason returns the reason of the first "Kernel panic - not syncing:"
// line of console text, or "".
func panicReason(console string) string {
	const mark = "Kernel panic - not syncing: "
	_, after, ok := strings.Cut(console, mark)
	if !ok {
		return ""
	}
	line, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(line)
}
