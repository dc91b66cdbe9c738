package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartBadSpec(t *testing.T) {
	if _, err := Start(context.Background(), Spec{}); err == nil || !strings.Contains(err.Error(), "no topology") {
		t.Errorf("no topology: %v", err)
	}
	_, err := Start(context.Background(), Spec{Topology: builtin(t, "pod-to-service"), Series: "0.1"})
	if err == nil || !strings.Contains(err.Error(), "cluster pod-to-service: prepare boot") {
		t.Errorf("unknown kernel series: %v", err)
	}
}

func TestCurrentStateFile(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if _, err := CurrentStateFile(); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("nothing recorded: %v", err)
	}
	cur, _ := currentPath()
	if err := os.MkdirAll(filepath.Dir(cur), 0o700); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	state := filepath.Join(dir, StateFileName)
	write := func(st State) {
		b, _ := json.Marshal(st)
		if err := os.WriteFile(state, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(cur, []byte(state+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CurrentStateFile(); !errors.Is(err, ErrNoCluster) || !strings.Contains(err.Error(), "stale") {
		t.Errorf("state file missing: %v", err)
	}
	write(State{PID: 1 << 30, Dir: dir})
	if _, err := CurrentStateFile(); !errors.Is(err, ErrNoCluster) || !strings.Contains(err.Error(), "is gone") {
		t.Errorf("holder gone: %v", err)
	}
	write(State{PID: os.Getpid(), Dir: dir})
	if got, err := CurrentStateFile(); err != nil || got != state {
		t.Errorf("running: %s, %v", got, err)
	}
}

func TestAttachErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Attach(filepath.Join(dir, "none.json")); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	if _, err := Attach(bad); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("bad JSON: %v", err)
	}
	text, _ := Encode(builtin(t, "pod-to-service"))
	st := State{PID: os.Getpid(), Dir: dir, Topology: string(text), File: "pod-to-service.yaml",
		Control: map[string]string{"tor": filepath.Join(dir, "tor.ctl")}}
	b, _ := json.Marshal(st)
	gone := filepath.Join(dir, "gone.json")
	os.WriteFile(gone, b, 0o644)
	if _, err := Attach(gone); err == nil || !strings.Contains(err.Error(), "tor") || !strings.Contains(err.Error(), "dial control relay") {
		t.Errorf("relay gone: %v", err)
	}
}
