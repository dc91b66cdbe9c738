package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/capture"
	"github.com/hoplab/hoplab/internal/errtext"
	"github.com/hoplab/hoplab/vmtest"
)

// TestReplayErrorsNameEachThingOnce runs replay's failures that need no VM
// and checks the whole error line: every layer (command, cluster, boot,
// capture) adds its own context once.
func TestReplayErrorsNameEachThingOnce(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pcap")
	bad := filepath.Join(dir, "bad.pcap")
	missing := filepath.Join(dir, "missing.pcap")
	kernel := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(good, pcapFile(1, synFrame(t, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("this is not a capture\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The capture reader's own message for a missing file: replay adds
	// nothing to it.
	_, readErr := capture.ReadFile(missing)
	if readErr == nil {
		t.Fatal("reading a missing capture did not fail")
	}
	t.Setenv(vmtest.EnvKernel, "") // --kernel PATH sets it; restored after the test
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing capture", []string{"--pcap", missing}, readErr.Error()},
		{"not a capture", []string{"--pcap", bad}, bad + ": not a pcap or pcapng file: starts with 74 68 69 73"},
		{"unknown pod", []string{"--pcap", good, "--inject", "pod9"},
			`replay: --inject: bad injection point "pod9": no such pod in topology pod-to-service (pods: pod1, pod4)`},
		{"node without bond", []string{"--pcap", good, "--inject", "node1"},
			`replay: --inject: bad injection point "node1": that is a node; say node1:bond0`},
		{"missing kernel", []string{"--pcap", good, "--kernel", kernel},
			"replay: cluster pod-to-service: prepare boot: HOPLAB_KERNEL: user kernel: open " + kernel + ": no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, append([]string{"replay", "--topology", "pod-to-service"}, c.args...)...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			// Log lines (booting...) come first; the error is the last line.
			lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
			got := strings.TrimPrefix(lines[len(lines)-1], "hoplab: ")
			if got != c.want {
				t.Errorf("error\n got %q\nwant %q", got, c.want)
			}
			if c.name == "missing capture" {
				return // the capture reader's message is its own (see internal/capture)
			}
			if r := errtext.Repeated(got); r != "" {
				t.Errorf("%q repeats %q", got, r)
			}
		})
	}
}
