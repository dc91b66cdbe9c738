package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

type empty struct{}

func registerBuiltins(a *Agent) {
	a.Handle(control.MethodPing, Typed(func(context.Context, empty) (empty, error) {
		return empty{}, nil
	}))
	a.Handle(control.MethodUname, Typed(func(context.Context, empty) (control.Uname, error) {
		return uname()
	}))
	a.Handle(control.MethodExec, Typed(runExec))
	a.Handle(control.MethodConfigure, Typed(func(ctx context.Context, c control.Configure) (empty, error) {
		return empty{}, Configure(ctx, c)
	}))
	a.Handle(control.MethodReadFile, Typed(func(_ context.Context, p control.ReadFile) ([]byte, error) {
		return os.ReadFile(p.Path)
	}))
	u := newUDPTable()
	a.Handle(control.MethodUDPListen, Typed(u.listen))
	a.Handle(control.MethodUDPStats, Typed(u.stats))
	a.Handle(control.MethodUDPSend, Typed(udpSend))
	a.Handle(control.MethodCrash, Typed(func(context.Context, empty) (empty, error) {
		// The sysrq file is there before the answer goes, so a kernel
		// without it fails the call rather than the test's wait.
		f, err := os.OpenFile("/proc/sysrq-trigger", os.O_WRONLY, 0)
		if err != nil {
			return empty{}, err
		}
		go func() {
			defer f.Close()
			time.Sleep(50 * time.Millisecond)
			_, _ = f.WriteString("c")
		}()
		return empty{}, nil
	}))
	a.Handle(control.MethodPoweroff, Typed(func(context.Context, empty) (empty, error) {
		// Answer first, then power off.
		go func() {
			time.Sleep(50 * time.Millisecond)
			Poweroff()
		}()
		return empty{}, nil
	}))
}

func uname() (control.Uname, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return control.Uname{}, err
	}
	return control.Uname{
		Sysname:  unix.ByteSliceToString(u.Sysname[:]),
		Nodename: unix.ByteSliceToString(u.Nodename[:]),
		Release:  unix.ByteSliceToString(u.Release[:]),
		Version:  unix.ByteSliceToString(u.Version[:]),
		Machine:  unix.ByteSliceToString(u.Machine[:]),
	}, nil
}

func runExec(ctx context.Context, e control.Exec) (control.ExecResult, error) {
	if len(e.Argv) == 0 {
		return control.ExecResult{}, errors.New("empty argv")
	}
	timeout := e.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Argv[0], e.Argv[1:]...)
	cmd.Env = append(os.Environ(), e.Env...)
	cmd.Dir = e.Dir
	cmd.Stdin = bytes.NewReader(e.Stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := control.ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	default:
		return res, err
	}
	return res, nil
}

// Poweroff syncs file systems and powers the machine off. It returns only
// if the reboot system call fails.
func Poweroff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
