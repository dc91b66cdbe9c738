package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestPlainLogLines: notes and warnings are single plain lines with their
// attributes; debug records are dropped; below the minimum level nothing.
func TestPlainLogLines(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(newPlainHandler(&b, slog.LevelInfo)).With("topology", "pod-to-service")
	log.Debug("hidden")
	log.Info("booting topology", "kernel", "6.1")
	log.Warn("peer selector {tier=front-end}\nselects no pod")
	log.Info("cluster up", "boot", 1234567*time.Microsecond)
	want := "note: booting topology (topology pod-to-service, kernel 6.1)\n" +
		"warning: peer selector {tier=front-end} selects no pod (topology pod-to-service)\n" +
		"note: cluster up (topology pod-to-service, boot 1.235s)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	slog.New(newPlainHandler(&b, slog.LevelWarn)).Info("not shown")
	if b.Len() != 0 {
		t.Errorf("an info line passed a warning-level handler: %q", b.String())
	}
}

// TestCLILogFormats: the CLI's log lines are plain by default, slog text
// with --log-format text, and a bad format is one clear error.
func TestCLILogFormats(t *testing.T) {
	top := "../../docs/examples/bug-report/topology.yaml"
	args := []string{"policy", "trace", "--topology", top, "--src", "web", "--dst", "10.96.40.10", "--dport", "80"}
	_, errOut, code := runCLI(t, args...)
	want := top + ":28:9: warning: policy orders-ingress: peer selector {tier=front-end} selects no pod, so it allows nothing\n"
	if code != 0 || errOut != want {
		t.Errorf("default: exit %d, stderr\n%q\nwant\n%q", code, errOut, want)
	}
	_, errOut, _ = runCLI(t, append([]string{"--log-format", "text"}, args...)...)
	if !strings.Contains(errOut, "level=WARN") || !strings.Contains(errOut, "at="+top+":28:9") {
		t.Errorf("--log-format text:\n%s", errOut)
	}
	_, errOut, code = runCLI(t, "--log-format", "yaml", "kernels", "list")
	if code != 1 || strings.TrimSpace(errOut) != `hoplab: --log-format "yaml": want text or json` {
		t.Errorf("bad --log-format: exit %d, %q", code, errOut)
	}
}
