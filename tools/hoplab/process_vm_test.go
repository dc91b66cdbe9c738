//go:build vm

package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
)

// buildCLI builds the hoplab binary for tests that run it as a process.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hoplab")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBin runs the binary to completion.
func runBin(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// qemuChildren lists the QEMU processes whose parent is pid.
func qemuChildren(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "qemu-system") {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// TestVMUpDownProcesses holds a cluster with `hoplab vm up` in one process
// and uses it from others: dumps, replay (reused), vm exec, a second vm up
// (refused), vm down (the holder exits 0 and its QEMUs are gone).
func TestVMUpDownProcesses(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	bin := buildCLI(t)
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	up := exec.Command(bin, "vm", "up", "policy")
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var upErr bytes.Buffer
	up.Stderr = &upErr
	begin := time.Now()
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Process.Kill(); up.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var upOut []string
	deadline := time.After(3 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("vm up ended: %s\n%s", strings.Join(upOut, "\n"), upErr.String())
			}
			upOut = append(upOut, l)
			if strings.HasPrefix(l, "holding until") {
				break wait
			}
		case <-deadline:
			t.Fatalf("vm up not ready:\n%s\n%s", strings.Join(upOut, "\n"), upErr.String())
		}
	}
	t.Logf("vm up ready in %v:\n%s", time.Since(begin).Round(time.Millisecond), strings.Join(upOut, "\n"))
	qemus := qemuChildren(up.Process.Pid)
	if len(qemus) != 3 {
		t.Errorf("%d QEMU children of vm up, want 3", len(qemus))
	}

	// A follower in its own process, ended by vm down.
	obs := exec.Command(bin, "-v", "observe", "--follow")
	var obsOut bytes.Buffer
	obs.Stdout = &obsOut
	obsPipe, err := obs.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obs.Process.Kill(); obs.Wait() })
	// Wait for its "observing" debug line: the stream flows from then on.
	var obsErr strings.Builder
	obsReady := make(chan struct{})
	obsRead := make(chan struct{})
	go func() {
		defer close(obsRead)
		sc := bufio.NewScanner(obsPipe)
		once := false
		for sc.Scan() {
			obsErr.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "msg=observing") {
				once = true
				close(obsReady)
			}
		}
	}()
	select {
	case <-obsReady:
	case <-time.After(30 * time.Second):
		t.Fatal("observe never started streaming")
	}

	out, errOut, code := runBin(t, bin, "endpoint", "list", "--node", "node2")
	if code != 0 || !strings.Contains(out, "pod4") {
		t.Errorf("endpoint list: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runBin(t, bin, "replay", "--topology", "policy", "--pcap", "../../fixtures/data/policy-denied-port.pcap")
	if code != 0 || !strings.Contains(errOut, "reusing running cluster") || !strings.Contains(out, "packet 0: DROPPED (Policy denied)") {
		t.Errorf("replay: exit %d\n%s%s", code, out, errOut)
	}
	// The guests' /init is this very binary (it doubles as the agent):
	// run again, not as process 1, it is the CLI.
	out, errOut, code = runBin(t, bin, "vm", "exec", "node1", "--", "/init", "--help")
	if code != 0 || !strings.Contains(out, "hoplab runs a Cilium-style eBPF datapath") {
		t.Errorf("vm exec /init --help: exit %d, %q %q", code, out, errOut)
	}
	_, errOut, code = runBin(t, bin, "vm", "up", "pod-to-service")
	if code != 1 || !strings.Contains(errOut, "a cluster is already running") {
		t.Errorf("second vm up: exit %d, %q", code, errOut)
	}
	out, errOut, code = runBin(t, bin, "vm", "down")
	if code != 0 {
		// Show where the holder hangs.
		up.Process.Signal(syscall.SIGQUIT)
		up.Wait()
		t.Fatalf("vm down: exit %d: %s\nholder's stderr:\n%s", code, errOut, upErr.String())
	}
	if err := up.Wait(); err != nil {
		t.Errorf("vm up exited with %v: %s", err, upErr.String())
	}
	for l := range lines {
		upOut = append(upOut, l)
	}
	if !strings.Contains(strings.Join(upOut, "\n"), "tearing down") {
		t.Errorf("vm up output lacks the teardown:\n%s", strings.Join(upOut, "\n"))
	}
	for _, pid := range qemus {
		if running(pid) {
			t.Errorf("QEMU %d survived vm down", pid)
		}
	}
	obsDone := make(chan error, 1)
	go func() { <-obsRead; obsDone <- obs.Wait() }()
	select {
	case err := <-obsDone:
		if err == nil || !strings.Contains(obsErr.String(), "observe: the cluster stopped") {
			t.Errorf("observe --follow ended with %v: %s", err, obsErr.String())
		}
	case <-time.After(10 * time.Second):
		t.Errorf("observe --follow still runs after vm down")
	}
	if !strings.Contains(obsOut.String(), "to-container DROPPED (Policy denied, TCP Flags: SYN)") {
		t.Errorf("observe --follow did not show the replayed drop:\n%s", obsOut.String())
	}
	_, errOut, code = runBin(t, bin, "ct", "list", "--node", "node1")
	if code != 1 || !strings.Contains(errOut, "no running cluster") {
		t.Errorf("after vm down: exit %d, %q", code, errOut)
	}
}

// TestReplayInterrupted sends SIGINT to a replay while its cluster boots:
// the process ends and leaves no QEMU and no run directory behind.
func TestReplayInterrupted(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	bin := buildCLI(t)
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	cmd := exec.Command(bin, "replay", "--topology", "policy", "--pcap", "../../fixtures/data/policy-denied-port.pcap")
	var e bytes.Buffer
	cmd.Stderr = &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var qemus []int
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end) && len(qemus) < 3; time.Sleep(50 * time.Millisecond) {
		qemus = qemuChildren(cmd.Process.Pid)
	}
	if len(qemus) < 3 {
		t.Fatalf("replay started %d QEMUs: %s", len(qemus), e.String())
	}
	var dirs []string
	for _, pid := range qemus {
		b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if a == "-pidfile" && i+1 < len(args) {
				dirs = append(dirs, filepath.Dir(args[i+1]))
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Logf("replay ended with %v after SIGINT: %s", err, e.String())
		if !strings.Contains(e.String(), "hoplab: interrupted") {
			t.Errorf("stderr lacks the interruption: %s", e.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("replay still runs 30 s after SIGINT: %s", e.String())
	}
	for _, pid := range qemus {
		for end := time.Now().Add(10 * time.Second); running(pid) && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		}
		if running(pid) {
			t.Errorf("QEMU %d survived the interrupted replay", pid)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("run directory %s left behind", d)
		}
	}
}
