package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/initramfs"
	"github.com/hoplab/hoplab/vmtest/kernels"
)

// Doctor verdicts: a failed check stops replays, a warning only slows or
// limits them.
const (
	checkOK   = "ok"
	checkWarn = "warn"
	checkFail = "FAIL"
)

// checkResult is one line of `hoplab doctor`.
type checkResult struct {
	name, status, detail, hint string
}

// minFreeCache is the free space the cache's file system needs: a kernel
// with its modules, initramfs archives and run directories.
const minFreeCache = 1 << 30

func newDoctorCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine for what hoplab needs (QEMU, KVM, kernel cache, disk, BPF) and say what to install",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			results := doctorChecks(cmd.Context())
			failed := 0
			for _, r := range results {
				fmt.Fprintf(a.stdout, "%-4s  %-12s %s\n", r.status, r.name, r.detail)
				if r.hint != "" && r.status != checkOK {
					fmt.Fprintf(a.stdout, "      %-12s → %s\n", "", r.hint)
				}
				if r.status == checkFail {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("doctor: %d check(s) failed", failed)
			}
			return nil
		},
	}
}

func doctorChecks(ctx context.Context) []checkResult {
	return []checkResult{checkQEMU(ctx), checkKVM(), checkAgent(), checkCache(), checkDisk(), checkTmp(), checkBPF()}
}

func checkQEMU(ctx context.Context) checkResult {
	r := checkResult{name: "qemu", hint: "install QEMU: sudo apt-get install -y qemu-system-x86"}
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		r.status, r.detail = checkFail, "qemu-system-x86_64 is not on PATH"
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "--version").Output()
	if err != nil {
		r.status, r.detail = checkFail, fmt.Sprintf("%s --version: %v", p, err)
		return r
	}
	r.status, r.detail = checkOK, fmt.Sprintf("%s (%s)", p, firstLine(string(out)))
	return r
}

func checkKVM() checkResult {
	r := checkResult{name: "kvm", hint: "VMs run under TCG (emulation), several times slower; for KVM: a host with virtualisation enabled, and access to /dev/kvm (the kvm group)"}
	module, whyNot := vmtest.KVMModule()
	if module == "" {
		r.status, r.detail = checkWarn, whyNot
		return r
	}
	r.status, r.detail = checkOK, "/dev/kvm usable, "+module+" loaded (a probe boot at the first run confirms it)"
	return r
}

// checkAgent checks that this executable can be the guests' agent.
func checkAgent() checkResult {
	r := checkResult{name: "agent", hint: "reinstall with CGO_ENABLED=0 go install github.com/hoplab/hoplab/tools/hoplab@latest"}
	exe := selfAgent
	if exe == "" {
		r.status, r.detail = checkOK, "built from the source tree at boot (tests)"
		return r
	}
	files, err := initramfs.RuntimeFiles(exe)
	if err != nil {
		r.status, r.detail = checkFail, err.Error()
		return r
	}
	if len(files) == 0 {
		r.status, r.detail = checkOK, exe+" is static: it boots as the guests' agent as it is"
		return r
	}
	r.status, r.detail = checkOK, fmt.Sprintf("%s is dynamically linked: its loader and shared libraries (%d files) go into the initramfs", exe, len(files))
	return r
}

func checkCache() checkResult {
	r := checkResult{name: "kernel cache", hint: "the first run fetches the topology's kernel (about 100 MB); or now: hoplab kernels fetch 6.1"}
	dir, err := kernels.CacheDir()
	if err != nil {
		r.status, r.detail = checkFail, err.Error()
		r.hint = "set HOPLAB_CACHE to a writable folder"
		return r
	}
	cached, err := kernels.List(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.status, r.detail = checkFail, err.Error()
		return r
	}
	if len(cached) == 0 {
		r.status, r.detail = checkWarn, dir+": no kernel cached yet"
		return r
	}
	var names []string
	for _, c := range cached {
		names = append(names, c.Series+"/"+c.Flavour)
	}
	r.status, r.detail = checkOK, fmt.Sprintf("%s: %s", dir, strings.Join(names, ", "))
	return r
}

func checkDisk() checkResult {
	r := checkResult{name: "disk", hint: "free space where the cache lives, or point HOPLAB_CACHE elsewhere"}
	root, err := kernels.CacheRoot()
	if err != nil {
		r.status, r.detail = checkFail, err.Error()
		return r
	}
	// The cache may not exist yet: measure its nearest existing parent.
	dir := root
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		r.status, r.detail = checkFail, fmt.Sprintf("statfs %s: %v", dir, err)
		return r
	}
	free := st.Bavail * uint64(st.Bsize)
	r.detail = fmt.Sprintf("%.1f GiB free for %s", float64(free)/(1<<30), root)
	r.status = checkOK
	if free < minFreeCache {
		r.status = checkFail
	}
	return r
}

// checkTmp checks that run directories and sockets can be made where
// TMPDIR points.
func checkTmp() checkResult {
	r := checkResult{name: "tmp", hint: "set TMPDIR to a writable folder"}
	d, err := os.MkdirTemp("", "hoplab-doctor-")
	if err != nil {
		r.status, r.detail = checkFail, err.Error()
		return r
	}
	os.RemoveAll(d)
	r.status, r.detail = checkOK, "run directories go to "+os.TempDir()
	return r
}

// checkBPF tries to create a BPF map on the host. Replays do not need it
// (the datapath runs in the VMs); the datapath's host tests (make test) do.
func checkBPF() checkResult {
	r := checkResult{name: "bpf", hint: "only `make test` needs BPF on the host: run it as root (sudo -E make test)"}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		r.status, r.detail = checkWarn, fmt.Sprintf("cannot create BPF maps here: %v", err)
		return r
	}
	m.Close()
	r.status, r.detail = checkOK, "BPF maps can be created (the datapath's host tests can run)"
	return r
}
