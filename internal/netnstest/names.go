package netnstest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
)

// NamedDir is where named (pinned) network namespaces live, as `ip netns`
// keeps them.
const NamedDir = "/run/netns"

// NamePrefix starts the name of every namespace named with [Prefix].
const NamePrefix = "hlt-"

// owner is a process as namespace names record it: its pid and its start
// time (clock ticks since boot, field 22 of /proc/PID/stat), so that a
// later process with the same pid is not taken for it.
type owner struct {
	pid   int
	start uint64
}

// self is this process, read once.
var self = sync.OnceValues(func() (owner, error) { return ownerOf(os.Getpid()) })

var counter atomic.Uint32

// Prefix returns a fresh prefix for the names of the network namespaces a
// test pins under /run/netns ("hlt-PID-START-TAGN-"): it carries this
// process's pid and start time, so that [Sweep] in a later test process
// removes them if this one dies before its cleanup (an interrupted or
// timed-out go test), and a counter that makes it unique in the process.
// tag says which test made them.
func Prefix(tag string) string {
	o, err := self()
	if err != nil {
		// Without /proc there is nothing to sweep with either.
		o = owner{pid: os.Getpid()}
	}
	return fmt.Sprintf("%s%d-%d-%s%d-", NamePrefix, o.pid, o.start, tag, counter.Add(1))
}

// parseOwner reads the owner out of a name made from [Prefix].
func parseOwner(name string) (owner, bool) {
	rest, ok := strings.CutPrefix(name, NamePrefix)
	if !ok {
		return owner{}, false
	}
	f := strings.SplitN(rest, "-", 3)
	if len(f) < 3 {
		return owner{}, false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return owner{}, false
	}
	return owner{pid, start}, true
}

// ownerOf reads pid's start time.
func ownerOf(pid int) (owner, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return owner{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return owner{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// Fields from 3 (state) on; starttime is field 22.
	if len(f) < 20 {
		return owner{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return owner{}, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return owner{pid, start}, nil
}

// alive reports whether the process o still runs (a zombie counts as
// gone: it will never clean up).
func (o owner) alive() bool {
	now, err := ownerOf(o.pid)
	if err != nil || now.start != o.start {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", o.pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// Sweep removes the namespaces under [NamedDir] named with [Prefix] by
// processes that no longer run, and returns their names. Names of running
// processes, this one included, and names made otherwise are left alone.
func Sweep() (removed []string, err error) {
	return sweep(func(o owner) bool { return !o.alive() })
}

// RemoveOwn removes the namespaces under [NamedDir] that this process named
// with [Prefix], for a signal handler: the tests' cleanups do not run when
// the process dies of a signal.
func RemoveOwn() (removed []string, err error) {
	me, err := self()
	if err != nil {
		return nil, fmt.Errorf("remove own network namespaces: %w", err)
	}
	return sweep(func(o owner) bool { return o == me })
}

func sweep(remove func(owner) bool) ([]string, error) {
	ents, err := os.ReadDir(NamedDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sweep network namespaces: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		o, ok := parseOwner(e.Name())
		if !ok || !remove(o) {
			continue
		}
		// Unmounts the pin and removes it.
		if err := netns.DeleteNamed(e.Name()); err != nil {
			errs = append(errs, fmt.Errorf("remove network namespace %s: %w", e.Name(), err))
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// Main runs a package's tests (call it from TestMain) so that the
// namespaces they pin under [NamedDir] with [Prefix] names never outlive
// them (see [Guard]). It returns m.Run's exit code.
func Main(m *testing.M) int {
	stop := Guard()
	defer stop()
	return m.Run()
}

// Guard removes the namespaces of test processes that died (interrupted,
// killed or timed out, so that their cleanups never ran), and until stop is
// called removes this process's own on SIGINT or SIGTERM before dying of
// the signal.
func Guard() (stop func()) {
	if removed, err := Sweep(); err != nil {
		fmt.Fprintf(os.Stderr, "netnstest: %v\n", err)
	} else if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "netnstest: removed %d network namespace(s) of dead test processes: %s\n",
			len(removed), strings.Join(removed, " "))
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s, ok := <-ch
		if !ok {
			return
		}
		if _, err := RemoveOwn(); err != nil {
			fmt.Fprintf(os.Stderr, "netnstest: %v\n", err)
		}
		signal.Stop(ch)
		// Die of the signal as if nobody had caught it.
		_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(ch)
		})
	}
}
