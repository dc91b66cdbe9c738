package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest/kernels"
)

// Verifier artifacts in RunSpec.Dir: the verifier's statistics for the
// kernel of the run (`hoplab verifier --json`, a one-kernel program ×
// kernel table), or, when the datapath did not load, hoplab's error.
const (
	VerifierFile    = "verifier.json"
	VerifierErrFile = "verifier.err"
)

// VerifierTimeout bounds the verifier's VM.
const VerifierTimeout = 3 * time.Minute

// verifierRun is one element of `hoplab verifier --json`.
type verifierRun struct {
	Kernel   string                  `json:"kernel"`
	Release  string                  `json:"release"`
	Programs []datapath.ProgramStats `json:"programs"`
}

// kernelsArg is the target as `hoplab verifier --kernels` takes it: a
// series, or the user's image (and modules directory) made absolute and
// followed by ';' (a list with ';' is split on it only, so the comma
// before the modules directory stays).
func (t Target) kernelsArg() string {
	if t.User == "" {
		if t.Series == "" {
			return kernels.DefaultSeries
		}
		return t.Series
	}
	parts := strings.Split(t.User, ",")
	for i, p := range parts {
		if abs, err := filepath.Abs(p); err == nil {
			parts[i] = abs
		}
	}
	return strings.Join(parts, ",") + ";"
}

// recordVerifier boots one VM on the target's kernel with `go run
// ./tools/hoplab verifier` (from the source tree the runner runs in),
// writes its table to dir/verifier.json, and returns a line for the
// summary. When the datapath does not load, hoplab's error (the program,
// the kernel and the verifier's reason) goes to dir/verifier.err and into
// the line; the suites then fail on their own.
func recordVerifier(ctx context.Context, t Target, dir string) string {
	ctx, cancel := context.WithTimeout(ctx, VerifierTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./tools/hoplab", "verifier", "--kernels", t.kernelsArg(), "--json")
	cmd.Env = t.env(os.Environ())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		_ = os.WriteFile(filepath.Join(dir, VerifierErrFile), []byte(msg+"\n"), 0o644)
		return fmt.Sprintf("verifier: FAILED after %v (%s): %s", took, filepath.Join(dir, VerifierErrFile), lastLine(msg))
	}
	if err := os.WriteFile(filepath.Join(dir, VerifierFile), stdout.Bytes(), 0o644); err != nil {
		return fmt.Sprintf("verifier: %v", err)
	}
	return verifierLine(stdout.Bytes(), filepath.Join(dir, VerifierFile), took)
}

// verifierLine summarises the table: programs, the one the verifier
// worked hardest on, and where the table is.
func verifierLine(table []byte, path string, took time.Duration) string {
	var runs []verifierRun
	if err := json.Unmarshal(table, &runs); err != nil || len(runs) == 0 {
		return fmt.Sprintf("verifier: unreadable table in %s: %v", path, err)
	}
	r := runs[0]
	top := datapath.ProgramStats{Processed: -1}
	for _, p := range r.Programs {
		if p.Processed > top.Processed {
			top = p
		}
	}
	line := fmt.Sprintf("verifier: %d programs loaded on %s in %v", len(r.Programs), r.Release, took)
	if top.Processed >= 0 {
		line += fmt.Sprintf("; most processed: %s/%s, %d insns", top.Object, top.Program, top.Processed)
	}
	return line + " (" + path + ")"
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
