package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hoplab/hoplab/vmtest"
)

// interruptGrace is how long a command may take to wind down after the
// first SIGINT or SIGTERM, tearing its cluster down in order (QEMU quit,
// run directory removed). When it takes longer, or at a second signal,
// hoplab kills the VMs, removes their run directories and exits.
const interruptGrace = 5 * time.Second

// interruptWatch ends an interrupted command that does not wind down by
// itself: see [interruptGrace].
type interruptWatch struct {
	grace time.Duration
	// signals returns the signals that arrive from now on, and a function
	// that stops their delivery.
	signals func() (<-chan os.Signal, func())
	kill    func()
	exit    func(code int)
	stderr  io.Writer

	mu       sync.Mutex
	finished bool // the command returned: its own result stands
	forced   bool // the watch ends the process
}

// newInterruptWatch watches for the process's SIGINT and SIGTERM; forcing
// kills every VM of the process (vmtest.KillAll) and exits with status 130.
func newInterruptWatch(stderr io.Writer) *interruptWatch {
	return &interruptWatch{
		grace: interruptGrace,
		signals: func() (<-chan os.Signal, func()) {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
			return ch, func() { signal.Stop(ch) }
		},
		kill:   vmtest.KillAll,
		exit:   os.Exit,
		stderr: stderr,
	}
}

// watch waits until ctx ends (the first signal); then, unless the command
// finishes within the grace time and before another signal, it kills the
// VMs, says so in one line and exits with status 130.
func (w *interruptWatch) watch(ctx context.Context, done <-chan struct{}) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	// Registered only now: the first signal is ctx's.
	again, stop := w.signals()
	defer stop()
	timer := time.NewTimer(w.grace)
	defer timer.Stop()
	var why string
	select {
	case <-done:
		return
	case s := <-again:
		why = "second " + signalName(s)
	case <-timer.C:
		why = fmt.Sprintf("still tearing down after %v", w.grace)
	}
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		return
	}
	w.forced = true
	w.mu.Unlock()
	w.kill()
	fmt.Fprintf(w.stderr, "hoplab: interrupted (%s: VMs killed)\n", why)
	w.exit(130)
}

// finish records that the command returned and reports whether its result
// still stands: false when the watch is ending the process.
func (w *interruptWatch) finish() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finished = true
	return !w.forced
}

func signalName(s os.Signal) string {
	if s == os.Interrupt {
		return "SIGINT"
	}
	if s == syscall.SIGTERM {
		return "SIGTERM"
	}
	return s.String()
}
