//go:build vm

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hoplab/hoplab/internal/testreq"
)

// The phases of a `hoplab replay` that boots its own cluster, in order, each
// with the -v log line that starts it (none for the first).
var replayPhases = []struct{ name, marker string }{
	{"boot", ""},
	{"node setup", `msg="cluster booted"`},
	{"BGP convergence", `msg="cluster set up"`},
	{"replay", `msg="cluster converged"`},
	{"report and teardown", `msg=replayed`},
}

// phaseFinished is the phase of a signal that reached the process after it
// had exited (or could not be shown to have reached it before).
const phaseFinished = "finished"

// oneNodeTopology is the smallest topology with every phase: a ToR and one
// node (two VMs), BGP between them, and a Service whose backend is on the
// node, so that the replayed SYN is delivered.
const oneNodeTopology = `name: one-node
kernel: "6.1"
mode: direct-routing
router: {name: tor, asn: 65000}
nodes:
  - name: node1
    asn: 65001
    podCIDR: 10.1.1.0/24
    uplink: {address: 10.255.1.11/24, gateway: 10.255.1.1, bond: balance-xor}
pods:
  - {name: pod1, node: node1, ip: 10.1.1.10, labels: {app: frontend}}
  - {name: pod2, node: node1, ip: 10.1.1.20, labels: {app: backend}, listen: ["tcp/8080"]}
services:
  - {name: backend, vip: 10.224.1.1, port: 80, protocol: tcp, backends: ["pod2:8080"]}
`

// cleanResult is in the report of a replay that ran to its end.
const cleanResult = "packet 0: DELIVERED to pod2"

// Bounds of an interrupted replay.
const (
	// exitBound is the most a replay may take to exit after SIGINT.
	exitBound = 10 * time.Second
	// runBound ends a replay that hangs.
	runBound = 3 * time.Minute
)

// EnvSIGINTSeed replays the interrupts of one seed.
const EnvSIGINTSeed = "HOPLAB_SIGINT_SEED"

// interruptRun is one `hoplab -v replay`, perhaps interrupted.
type interruptRun struct {
	started, signalled, exited time.Time
	sent                       bool        // SIGINT was sent
	twice                      atomic.Bool // and again, 20 ms later
	alive                      bool        // the process had not exited when it was sent
	code                       int         // exit status, -1 when killed by a signal
	signal                     syscall.Signal
	stdout, stderr             string
	markers                    map[string]time.Time // marker → its line's own time
}

// phase is the phase the signal hit, from the process's own log times.
func (r *interruptRun) phase() string {
	if !r.alive {
		return phaseFinished
	}
	hit := replayPhases[0].name
	for _, p := range replayPhases[1:] {
		if at, ok := r.markers[p.marker]; ok && !at.After(r.signalled) {
			hit = p.name
		}
	}
	return hit
}

// toExit is the time from the signal to the process's exit.
func (r *interruptRun) toExit() time.Duration { return r.exited.Sub(r.signalled) }

// interruptBench runs hoplab replays in a short runtime folder of their own.
type interruptBench struct {
	t        *testing.T
	bin, dir string // dir is XDG_RUNTIME_DIR and TMPDIR of every run
	args     []string
	host     hostNet
	twice    bool // send SIGINT twice, 20 ms apart
}

// replay runs one replay. trigger, when set, is the marker after whose
// line SIGINT is sent, after delay; without it SIGINT is sent delay after
// the start. A negative delay sends nothing.
func (b *interruptBench) replay(trigger string, delay time.Duration) *interruptRun {
	t := b.t
	t.Helper()
	cmd := exec.Command(b.bin, b.args...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+b.dir, "TMPDIR="+b.dir)
	var o bytes.Buffer
	cmd.Stdout = &o
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &interruptRun{markers: map[string]time.Time{}}
	var mu sync.Mutex
	signal := func() {
		mu.Lock()
		defer mu.Unlock()
		if r.sent {
			return
		}
		r.signalled = time.Now()
		if cmd.Process.Signal(syscall.SIGINT) == nil {
			r.sent = true
			// A process that is no zombie after the signal was sent had
			// not exited when it was sent.
			r.alive = !zombie(cmd.Process.Pid)
		}
		if b.twice {
			time.AfterFunc(20*time.Millisecond, func() {
				if cmd.Process.Signal(syscall.SIGINT) == nil {
					r.twice.Store(true)
				}
			})
		}
	}
	r.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var timer *time.Timer
	if trigger == "" && delay >= 0 {
		timer = time.AfterFunc(delay, signal)
	}
	var e strings.Builder
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if trigger != "" && delay >= 0 && strings.Contains(l, trigger) {
				timer = time.AfterFunc(delay, signal)
			}
			e.WriteString(l + "\n")
			for _, p := range replayPhases[1:] {
				if strings.Contains(l, p.marker) {
					if at, ok := lineTime(l); ok {
						mu.Lock()
						r.markers[p.marker] = at
						mu.Unlock()
					}
				}
			}
		}
	}()
	done := make(chan error, 1)
	go func() { <-read; done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(runBound):
		cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, on stderr
		werr = <-done
		t.Fatalf("replay still ran after %v:\n%s", runBound, e.String())
	}
	r.exited = time.Now()
	if timer != nil { // set by this goroutine or the reader, which ended
		timer.Stop()
	}
	mu.Lock() // a timer that fired may still be signalling
	mu.Unlock()
	r.stdout, r.stderr = o.String(), e.String()
	r.code = 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = ws.Signal()
		}
	} else if werr != nil {
		t.Fatalf("replay: %v", werr)
	}
	return r
}

// check asserts what an interrupted (or finished) replay must leave: one
// line saying it was interrupted and exit status 130, or the clean result;
// then no QEMU, socket, run directory, network namespace or tap/veth. It
// returns the number of things left.
func (b *interruptBench) check(name string, r *interruptRun) int {
	t := b.t
	t.Helper()
	phase := r.phase()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	switch {
	case r.signal == syscall.SIGINT && r.stderr == "" && r.stdout == "":
		// The signal came before hoplab had set up its handling (the Go
		// runtime and package initialisation, tens of milliseconds): the
		// process ends by the signal, as any program does, and a shell
		// reports 130. It had started nothing; the checks below make sure.
		t.Logf("%s (%s): ended by the signal before hoplab handled signals", name, phase)
	case r.code == 0:
		if !strings.Contains(r.stdout, cleanResult) {
			t.Errorf("%s (%s): exit 0 without the journey:\n%s", name, phase, r.stdout)
		}
		if strings.Contains(r.stderr, "hoplab: interrupted") {
			t.Errorf("%s (%s): exit 0 but says it was interrupted:\n%s", name, phase, last)
		}
	case r.code == 130:
		if !strings.HasPrefix(last, "hoplab: interrupted (") || !strings.HasSuffix(last, ")") {
			t.Errorf("%s (%s): exit 130, last line %q, want `hoplab: interrupted (...)`", name, phase, last)
		}
		if strings.Contains(last, "still tearing down after") && !r.twice.Load() {
			// The interrupt watch ended a command that hung.
			t.Errorf("%s (%s): the replay hung after SIGINT and was forced:\n%s", name, phase, tail(r.stderr, 5))
		}
		if n := strings.Count(r.stderr, "hoplab: interrupted"); n != 1 {
			t.Errorf("%s (%s): %d interruption lines", name, phase, n)
		}
		if phase == phaseFinished {
			t.Errorf("%s: exit 130 although the signal came after the end", name)
		}
	default:
		t.Errorf("%s (%s): exit status %d (signal %v), want 130 or 0; stderr ends:\n%s", name, phase, r.code, r.signal, tail(r.stderr, 10))
	}
	if r.sent && r.alive && r.toExit() > exitBound {
		t.Errorf("%s (%s): exited %v after SIGINT, bound %v", name, phase, r.toExit().Round(time.Millisecond), exitBound)
	}
	return b.leftovers(name + " (" + phase + ")")
}

// leftovers fails the test for anything a replay left behind and returns
// how many things it left.
func (b *interruptBench) leftovers(what string) int {
	t := b.t
	t.Helper()
	// QEMU dies with its parent (a parent-death signal) but may take a
	// moment after it; the harness waits for it, so the wait is short.
	var qemus []string
	for end := time.Now().Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if qemus = qemusUsing(b.dir); len(qemus) == 0 || time.Now().After(end) {
			break
		}
	}
	if len(qemus) > 0 {
		t.Errorf("%s: QEMU processes left: %v", what, qemus)
	}
	// Only the empty hoplab folder may stay in the runtime folder.
	var left []string
	filepath.WalkDir(b.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == b.dir {
			return nil
		}
		if d.IsDir() && p == filepath.Join(b.dir, "hoplab") {
			return nil
		}
		left = append(left, strings.TrimPrefix(p, b.dir+"/"))
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("%s: left in the runtime folder: %v", what, left)
		for _, l := range left {
			os.RemoveAll(filepath.Join(b.dir, l)) // the next run starts clean
		}
	}
	n := len(qemus) + len(left)
	if d := snapshotHostNet().diff(b.host); len(d) > 0 {
		t.Errorf("%s: left on the host: %s", what, strings.Join(d, ", "))
		n += len(d)
	}
	if socks := unixSocketsUnder(b.dir); len(socks) > 0 {
		t.Errorf("%s: bound unix sockets left: %v", what, socks)
		n += len(socks)
	}
	return n
}

// TestReplaySIGINTAnywhere sends SIGINT to a real `hoplab replay` at random
// points of its run (boot, node setup, BGP convergence, replay, teardown)
// and checks each time that it exits quickly with one line saying it was
// interrupted (or with its clean result when the signal came after the
// end), and leaves no QEMU, socket, run directory, network namespace or
// tap/veth device. The delays are uniform over one uninterrupted run's
// duration, measured first; a phase the draw misses gets a run of its own,
// interrupted just after the log line that starts it. HOPLAB_SIGINT_SEED
// replays a seed.
func TestReplaySIGINTAnywhere(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	const draws = 20
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(EnvSIGINTSeed); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", EnvSIGINTSeed, s, err)
		}
		seed = v
	}
	t.Logf("seed %d (%s=%d replays these interrupts)", seed, EnvSIGINTSeed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	bin := buildCLI(t)
	// A short folder: run directories live in it only when its path
	// leaves room for unix socket names (vmtest.NewRunDir).
	dir, err := os.MkdirTemp("", "hlsig")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	top := filepath.Join(t.TempDir(), "one-node.yaml")
	if err := os.WriteFile(top, []byte(oneNodeTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	pcap, err := filepath.Abs(filepath.Join("..", "..", "fixtures", "data", "tcp-syn-vip.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	b := &interruptBench{t: t, bin: bin, dir: dir, host: snapshotHostNet(),
		args: []string{"-v", "replay", "--topology", top, "--pcap", pcap}}

	// Two runs without a signal: the first fills the initramfs cache for
	// this build of hoplab, the second gives the run's duration and the
	// length of each phase.
	var base *interruptRun
	for i := range 2 {
		base = b.replay("", -1)
		if base.code != 0 {
			t.Fatalf("uninterrupted replay: exit %d\n%s", base.code, tail(base.stderr, 20))
		}
		b.check(fmt.Sprintf("uninterrupted run %d", i), base)
	}
	whole := base.exited.Sub(base.started)
	length := map[string]time.Duration{}
	for i, p := range replayPhases {
		from, to := base.started, base.exited
		if p.marker != "" {
			from = base.markers[p.marker]
		}
		if i+1 < len(replayPhases) {
			to = base.markers[replayPhases[i+1].marker]
		}
		if from.IsZero() || to.IsZero() {
			t.Fatalf("uninterrupted replay lacks the line of phase %q:\n%s", p.name, base.stderr)
		}
		length[p.name] = to.Sub(from)
	}
	t.Logf("uninterrupted replay: %v (%s)", whole.Round(time.Millisecond), phaseLengths(length))

	type hit struct {
		runs, left int
		maxExt     time.Duration
		codes      map[int]int
	}
	hits := map[string]*hit{}
	record := func(name string, r *interruptRun) {
		left := b.check(name, r)
		h := hits[r.phase()]
		if h == nil {
			h = &hit{codes: map[int]int{}}
			hits[r.phase()] = h
		}
		h.runs++
		h.left += left
		h.codes[r.code]++
		if r.alive {
			h.maxExt = max(h.maxExt, r.toExit())
		}
		if !r.sent {
			t.Logf("%s: the replay ended first; exit %d", name, r.code)
			return
		}
		t.Logf("%s: SIGINT at %v hit %s; exit %d %v after it: %s", name, r.signalled.Sub(r.started).Round(time.Millisecond),
			r.phase(), r.code, r.toExit().Round(time.Millisecond), lastLine(r.stderr))
	}
	// Uniform over the whole run, the teardown included; a little past
	// its end too, where the signal meets a finished process.
	span := whole + whole/10
	for i := range draws {
		u := rng.Float64()
		delay := time.Duration(u * float64(span))
		record(fmt.Sprintf("draw %d (u=%.4f, delay %v)", i, u, delay.Round(time.Millisecond)), b.replay("", delay))
	}
	// Phases the draw missed: just after their line, halfway into the
	// phase (at once for the short teardown).
	for _, p := range replayPhases {
		for try := 0; hits[p.name] == nil && try < 3; try++ {
			delay := length[p.name] / 2
			if p.marker == "" {
				delay = time.Duration(rng.Int64N(int64(length[p.name])))
			} else if p.name == "report and teardown" {
				delay = 0
			}
			record(fmt.Sprintf("targeted %s (try %d, %v after its line)", p.name, try, delay.Round(time.Millisecond)), b.replay(p.marker, delay))
		}
		if hits[p.name] == nil {
			t.Errorf("no run was interrupted during %s", p.name)
		}
	}
	// Ctrl-C twice: the second signal kills the VMs at once, and still
	// nothing is left.
	b.twice = true
	record("twice during boot", b.replay("", length["boot"]/2))
	b.twice = false

	var table strings.Builder
	fmt.Fprintf(&table, "%-20s %5s %12s %10s %s\n", "phase", "runs", "max to exit", "leftovers", "exit statuses")
	for _, name := range append(phaseNames(), phaseFinished) {
		if h := hits[name]; h != nil {
			fmt.Fprintf(&table, "%-20s %5d %12v %10d %v\n", name, h.runs, h.maxExt.Round(time.Millisecond), h.left, h.codes)
		}
	}
	t.Logf("seed %d, per phase:\n%s", seed, table.String())
}

// phaseNames are the phases' names in order.
func phaseNames() []string {
	var out []string
	for _, p := range replayPhases {
		out = append(out, p.name)
	}
	return out
}

func phaseLengths(m map[string]time.Duration) string {
	var out []string
	for _, n := range phaseNames() {
		out = append(out, fmt.Sprintf("%s %v", n, m[n].Round(time.Millisecond)))
	}
	return strings.Join(out, ", ")
}

// lineTime is the time of a slog text line ("time=2026-12-07T12:20:28.019Z ...").
func lineTime(l string) (time.Time, bool) {
	v, ok := strings.CutPrefix(l, "time=")
	if !ok {
		return time.Time{}, false
	}
	v, _, _ = strings.Cut(v, " ")
	at, err := time.Parse(time.RFC3339Nano, v)
	return at, err == nil
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// zombie reports whether pid has exited and awaits its parent's wait.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone altogether
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

// qemusUsing lists the QEMU processes whose command line mentions dir.
func qemusUsing(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte("qemu-system")) && bytes.Contains(b, []byte(dir)) {
			out = append(out, e.Name())
		}
	}
	return out
}

// unixSocketsUnder lists the bound unix sockets with a path under dir,
// deleted files included.
func unixSocketsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 8 && strings.HasPrefix(f[7], dir+"/") {
			out = append(out, f[7])
		}
	}
	return out
}

// hostNet is what the host's network shows of leaks: named network
// namespaces and tap/tun and veth devices in its namespace.
type hostNet struct {
	netns, links []string
}

// otherTests are the prefixes of the network namespaces this repository's
// host tests name (vmtest/agent/pods, workload and roles, internal/netnstest):
// package tests running at the same time as this one make and remove them.
// hoplab itself makes none on the host.
var otherTests = []string{"hlt-", "hl-", "hlnode", "hlerr"}

func snapshotHostNet() hostNet {
	var h hostNet
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if !slices.ContainsFunc(otherTests, func(p string) bool { return strings.HasPrefix(e.Name(), p) }) {
			h.netns = append(h.netns, e.Name())
		}
	}
	links, _ := netlink.LinkList()
	for _, l := range links {
		if typ := l.Type(); typ == "tuntap" || typ == "veth" {
			h.links = append(h.links, l.Attrs().Name)
		}
	}
	slices.Sort(h.links)
	return h
}

// diff lists what h has and before had not.
func (h hostNet) diff(before hostNet) []string {
	var out []string
	for _, n := range h.netns {
		if !slices.Contains(before.netns, n) {
			out = append(out, "netns "+n)
		}
	}
	for _, l := range h.links {
		if !slices.Contains(before.links, l) {
			out = append(out, "link "+l)
		}
	}
	return out
}
