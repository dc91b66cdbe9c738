package main

import (
	"bytes"
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// watchRig is an interruptWatch whose signals, kill and exit the test
// drives and records.
type watchRig struct {
	w      *interruptWatch
	again  chan os.Signal
	killed atomic.Bool
	exited chan int
	stderr bytes.Buffer
	ctx    context.Context
	signal context.CancelFunc
	done   chan struct{}
	ended  chan struct{}
}

func newWatchRig(grace time.Duration) *watchRig {
	r := &watchRig{again: make(chan os.Signal, 1), exited: make(chan int, 1), done: make(chan struct{}), ended: make(chan struct{})}
	r.ctx, r.signal = context.WithCancel(context.Background())
	r.w = &interruptWatch{
		grace:   grace,
		signals: func() (<-chan os.Signal, func()) { return r.again, func() {} },
		kill:    func() { r.killed.Store(true) },
		exit:    func(code int) { r.exited <- code },
		stderr:  &r.stderr,
	}
	go func() { defer close(r.ended); r.w.watch(r.ctx, r.done) }()
	return r
}

// forced waits for the watch to end the process and returns its line.
func (r *watchRig) forced(t *testing.T) string {
	t.Helper()
	select {
	case code := <-r.exited:
		if code != 130 {
			t.Errorf("exit status %d, want 130", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end the process")
	}
	if !r.killed.Load() {
		t.Error("the VMs were not killed")
	}
	if r.w.finish() {
		t.Error("the command's result still stands after a forced exit")
	}
	return r.stderr.String()
}

// notForced checks that the watch ended without touching the process.
func (r *watchRig) notForced(t *testing.T) {
	t.Helper()
	select {
	case <-r.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch still runs")
	}
	if r.killed.Load() || len(r.exited) > 0 || r.stderr.Len() > 0 {
		t.Errorf("the watch acted: killed %v, exited %d, %q", r.killed.Load(), len(r.exited), r.stderr.String())
	}
}

func TestInterruptWatch(t *testing.T) {
	t.Run("a command that does not wind down is ended after the grace time", func(t *testing.T) {
		r := newWatchRig(20 * time.Millisecond)
		r.signal()
		if got, want := r.forced(t), "hoplab: interrupted (still tearing down after 20ms: VMs killed)\n"; got != want {
			t.Errorf("stderr %q, want %q", got, want)
		}
	})
	t.Run("a second signal ends it at once", func(t *testing.T) {
		r := newWatchRig(time.Hour)
		r.signal()
		r.again <- os.Interrupt
		if got, want := r.forced(t), "hoplab: interrupted (second SIGINT: VMs killed)\n"; got != want {
			t.Errorf("stderr %q, want %q", got, want)
		}
	})
	t.Run("a command that winds down in time keeps its own result", func(t *testing.T) {
		r := newWatchRig(time.Hour)
		r.signal()
		time.Sleep(10 * time.Millisecond)
		if !r.w.finish() {
			t.Error("finish: the result does not stand")
		}
		close(r.done)
		r.notForced(t)
	})
	t.Run("a command that returned before the grace ran out is not forced", func(t *testing.T) {
		r := newWatchRig(20 * time.Millisecond)
		if !r.w.finish() { // returned, done not closed yet
			t.Error("finish: the result does not stand")
		}
		r.signal()
		r.notForced(t)
	})
	t.Run("without a signal nothing happens", func(t *testing.T) {
		r := newWatchRig(time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		close(r.done)
		r.notForced(t)
	})
}
