//go:build vm

package cluster

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
)

// cancelOn is a log handler that cancels a context when a record with the
// given message passes.
type cancelOn struct {
	slog.Handler
	msg    string
	cancel context.CancelFunc
}

func (h cancelOn) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.cancel()
	}
	return h.Handler.Handle(ctx, r)
}

func (h cancelOn) WithAttrs(as []slog.Attr) slog.Handler {
	return cancelOn{h.Handler.WithAttrs(as), h.msg, h.cancel}
}

// TestInterruptLeavesNothing interrupts Start before it boots anything,
// while the fabric is configured, during node setup and during BGP
// convergence: Start returns one line naming the cluster and the step, and
// no run directory, socket or QEMU is left.
func TestInterruptLeavesNothing(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	for _, c := range []struct{ at, want string }{
		{"", "cluster pod-to-service: prepare boot: context canceled"},
		{"fabric booted", "cluster pod-to-service: boot: context canceled"},
		{"cluster booted", "cluster pod-to-service: node setup: context canceled"},
		{"cluster set up", "cluster pod-to-service: BGP convergence: context canceled"},
	} {
		at, want := c.at, c.want
		name := strings.ReplaceAll(at, " ", "-")
		if at == "" {
			name = "before-start"
		}
		t.Run(name, func(t *testing.T) {
			// Short: run directories go to XDG_RUNTIME_DIR only when its
			// path leaves room for socket names.
			runtime, err := os.MkdirTemp("", "hlint")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(runtime) })
			t.Setenv("XDG_RUNTIME_DIR", runtime)
			t.Setenv("TMPDIR", runtime)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if at == "" {
				cancel()
			}
			log := slog.New(cancelOn{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}), at, cancel})
			start := time.Now()
			c, err := Start(ctx, Spec{Topology: builtin(t, "pod-to-service"), Logger: log, ConsoleLine: func(string, string) {}})
			if err == nil {
				c.Close()
				t.Fatalf("Start interrupted at %q succeeded", at)
			}
			t.Logf("interrupted at %q after %v: %v", at, time.Since(start).Round(time.Millisecond), err)
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			left, _ := filepath.Glob(filepath.Join(runtime, "hoplab", "*"))
			rest, _ := filepath.Glob(filepath.Join(runtime, "hl-*"))
			if left = append(left, rest...); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			if pids := qemusUnder(runtime); len(pids) != 0 {
				t.Errorf("QEMU still running: %v", pids)
			}
		})
	}
}

// qemusUnder lists the QEMU processes whose command line mentions dir.
func qemusUnder(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "qemu-system") && strings.Contains(string(b), dir) {
			out = append(out, e.Name())
		}
	}
	return out
}
