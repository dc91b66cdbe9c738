package netnstest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/hoplab/hoplab/internal/testreq"
)

// envChild makes the test binary a test process that pins a namespace and
// waits to be killed (see TestInterruptedTestLeavesNoNamespace).
const envChild = "HOPLAB_NETNSTEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		Guard()
		name := Prefix("child") + "pod1"
		if err := pinNamed(name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("pinned", name)
		time.Sleep(time.Minute)
		os.Exit(1)
	}
	os.Exit(Main(m))
}

// pinNamed makes a named network namespace without moving the caller into
// it.
func pinNamed(name string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		return fmt.Errorf("pin %s: %w", name, err)
	}
	ns.Close()
	if err := netns.Set(orig); err != nil {
		runtime.LockOSThread() // this thread is in the wrong namespace: never reuse it
		return err
	}
	return nil
}

// pin makes a named network namespace without moving the test into it, and
// removes it when the test ends if it is still there.
func pin(t *testing.T, name string) {
	t.Helper()
	if err := pinNamed(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if pinned(name) {
			netns.DeleteNamed(name)
		}
	})
}

func pinned(name string) bool {
	_, err := os.Stat(NamedDir + "/" + name)
	return err == nil
}

// process starts a sleeping process and returns it with its owner.
func process(t *testing.T) (*exec.Cmd, owner) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	o, err := ownerOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, o
}

func TestPrefixNamesThisProcessUniquely(t *testing.T) {
	a, b := Prefix("x"), Prefix("x")
	if a == b {
		t.Errorf("two prefixes are both %q", a)
	}
	o, ok := parseOwner(a + "pod1")
	me, err := ownerOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !ok || o != me {
		t.Errorf("%q: owner %+v (%v), want %+v", a, o, ok, me)
	}
	for _, name := range []string{"hl-test-pod1", "hlt-", "hlt-12-pod", "hlt-x-1-pod", "hlt-0-1-a-"} {
		if o, ok := parseOwner(name); ok {
			t.Errorf("%q parses as owned by %+v", name, o)
		}
	}
}

// A namespace named by a process that died (killed, or its pid now another
// process's) is swept; one of a live process, this one or another, and
// one named otherwise are kept.
func TestSweepRemovesDeadProcessesNamespacesOnly(t *testing.T) {
	testreq.Root(t)
	dead, deadOwner := process(t)
	dead.Process.Kill()
	dead.Wait()
	_, live := process(t)
	names := map[string]bool{ // name → swept
		fmt.Sprintf("hlt-%d-%d-sweep-pod1", deadOwner.pid, deadOwner.start): true,
		fmt.Sprintf("hlt-%d-%d-sweep-pod2", live.pid, live.start+1):         true, // the pid was reused
		fmt.Sprintf("hlt-%d-%d-sweep-pod3", live.pid, live.start):           false,
		Prefix("sweep") + "pod4": false,
		fmt.Sprintf("hl-sweep-%d-%d", deadOwner.pid, deadOwner.start): false,
	}
	for name := range names {
		pin(t, name)
	}
	removed, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	for name, swept := range names {
		if got := pinned(name); got == swept {
			t.Errorf("%s: pinned %v after the sweep, want %v", name, got, !swept)
		}
		if slices.Contains(removed, name) != swept {
			t.Errorf("%s: in Sweep's list %v, want %v", name, !swept, swept)
		}
	}
	t.Logf("swept %v", removed)
}

// A test process that pinned a namespace and is interrupted (SIGINT) removes
// it before it dies; one killed outright (SIGKILL, or go test's timeout
// panic) leaves it, and the next test process's sweep removes it.
func TestInterruptedTestLeavesNoNamespace(t *testing.T) {
	testreq.Root(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envChild+"=1")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			var name string
			sc := bufio.NewScanner(out)
			for name == "" && sc.Scan() {
				if n, ok := strings.CutPrefix(sc.Text(), "pinned "); ok {
					name = n
				}
			}
			if name == "" || !pinned(name) {
				t.Fatalf("the child pinned no namespace (%q)", name)
			}
			t.Cleanup(func() {
				if pinned(name) {
					netns.DeleteNamed(name)
				}
			})
			go func() {
				for sc.Scan() {
				}
			}()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != sig {
					t.Errorf("child ended with %v, want death by %v", err, sig)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("child still runs 10 s after %v", sig)
			}
			if sig == syscall.SIGKILL {
				if !pinned(name) {
					t.Fatalf("%s gone after SIGKILL: nothing left to sweep", name)
				}
				removed, err := Sweep()
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(removed, name) {
					t.Errorf("sweep removed %v, not %s", removed, name)
				}
			}
			if pinned(name) {
				t.Errorf("%s still pinned after the child died of %v", name, sig)
			}
		})
	}
}
