//go:build vm

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/internal/testreq"
)

// TestInstalledCLIRunsAnywhere installs hoplab with `go install` into a
// fresh GOBIN (with cgo, as a user's go install builds it: dynamically
// linked) and replays a fixture from a folder outside the source tree, with
// no go command on PATH: the binary boots itself as the guests' agent. The
// journeys must be the fixture's expectation.
func TestInstalledCLIRunsAnywhere(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	gobin, work := t.TempDir(), t.TempDir()
	install := exec.Command("go", "install", ".")
	install.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	const fx, topology = "tcp-syn-vip", "pod-to-service"
	pcap, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "data", fx+".pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "capture.pcap"), pcap, 0o644); err != nil {
		t.Fatal(err)
	}

	// Only the system's folders on PATH: no go command.
	path := "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
	for _, d := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(d, "go")); err == nil {
			t.Fatalf("%s/go exists: the test cannot hide the go command", d)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "XDG_RUNTIME_DIR", strings.HasPrefix(k, "GO"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PATH="+path, "XDG_RUNTIME_DIR="+t.TempDir())

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(gobin, "hoplab"), "replay", "--topology", topology, "--pcap", "capture.pcap", "--json")
	cmd.Dir, cmd.Env = work, env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	begin := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("installed hoplab replay: %v\n%s", err, e.String())
	}
	t.Logf("installed hoplab replayed %s from %s in %v", fx, work, time.Since(begin).Round(time.Second))
	rep, err := journey.DecodeReport(&o)
	if err != nil {
		t.Fatalf("--json output: %v\n%s", err, o.String())
	}
	cs := caseOf(t, fx, topology)
	if len(rep.Packets) != len(cs.Packets) {
		t.Fatalf("%d journeys, want %d", len(rep.Packets), len(cs.Packets))
	}
	for i, want := range cs.Packets {
		if d := journey.Diff(want, rep.Packets[i]); !d.Equal() {
			t.Errorf("packet %d:\n%s", i, d)
		}
	}
	if ents, _ := os.ReadDir(work); len(ents) != 1 {
		t.Errorf("the run left files in its working folder: %v", ents)
	}
}
