package vmtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

func socketPair() (host *os.File, guest *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "guest"), nil
}

func (vm *VM) boot() error {
	o := vm.opts
	vm.dir = o.Dir
	if vm.dir == "" {
		d, err := NewRunDir()
		if err != nil {
			return err
		}
		vm.dir, vm.ownDir = d, true
	}
	consolePath := o.ConsoleLog
	if consolePath == "" {
		consolePath = vm.path(".console.log")
	}
	var err error
	if vm.consoleFile, err = os.Create(consolePath); err != nil {
		return err
	}
	if vm.agentLog, err = os.Create(vm.path(".agent.jsonl")); err != nil {
		return err
	}

	conHost, conGuest, err := socketPair()
	if err != nil {
		return err
	}
	defer conGuest.Close()
	ctlHost, ctlGuest, err := socketPair()
	if err != nil {
		conHost.Close()
		return err
	}
	defer ctlGuest.Close()
	vm.qmpPath = vm.path(".qmp")
	if len(vm.qmpPath) > 107 {
		return fmt.Errorf("qmp socket path %s too long for a unix socket: use a shorter run dir", vm.qmpPath)
	}
	_ = os.Remove(vm.qmpPath)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: vm.qmpPath, Net: "unix"})
	if err != nil {
		return fmt.Errorf("qmp listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	qmpFile, err := ln.File()
	ln.Close()
	if err != nil {
		return fmt.Errorf("qmp listen: %w", err)
	}
	defer qmpFile.Close()

	devs := []Device{
		&serialConsole{socketChardev{file: conGuest}},
		&qmpMonitor{socketChardev{file: qmpFile, server: true}},
		&controlPort{socketChardev{file: ctlGuest}},
	}
	for _, n := range o.NICs {
		devs = append(devs, n)
	}
	devs = append(devs, o.Devices...)
	cl, err := vm.render(devs, false)
	if err != nil {
		return err
	}
	if repro, err := vm.render(devs, true); err == nil {
		vm.repro = o.QEMU + " " + repro.String()
	}
	vm.cmdline = o.QEMU + " " + cl.String()
	vm.log.Info("starting qemu", "accel", vm.accel, "cmdline", vm.cmdline)

	qemuLog, err := os.Create(vm.path(".qemu.log"))
	if err != nil {
		return err
	}
	defer qemuLog.Close()
	vm.cmd = exec.Command(o.QEMU, cl.Args...)
	vm.cmd.ExtraFiles = cl.Files
	vm.cmd.Stdout, vm.cmd.Stderr = qemuLog, qemuLog
	vm.start = time.Now()
	if err := startWithDeathSignal(vm.cmd); err != nil {
		conHost.Close()
		ctlHost.Close()
		return fmt.Errorf("start qemu: %w", err)
	}
	register(vm)
	go func() {
		err := vm.cmd.Wait()
		if err == nil {
			err = errors.New("exit status 0: the guest powered off, or reset (a panic resets with panic=-1)")
		}
		vm.exitErr = err
		if !vm.stopping.Load() {
			vm.keep.Store(true)
		}
		close(vm.exited)
	}()

	conConn, err := net.FileConn(conHost)
	conHost.Close()
	if err != nil {
		close(vm.consoleDone)
		ctlHost.Close()
		return err
	}
	go vm.readConsole(conConn)

	ctlConn, err := net.FileConn(ctlHost)
	ctlHost.Close()
	if err != nil {
		return err
	}
	handlers := append([]control.EventHandler{vm.onEvent}, o.EventHandlers...)
	vm.agent = control.NewClient(ctlConn.(*net.UnixConn), handlers...)

	return vm.connectQMP()
}

func (vm *VM) render(devs []Device, repro bool) (*Cmdline, error) {
	o := vm.opts
	c := &Cmdline{Repro: repro, ReproDir: vm.dir}
	c.Add("-name", o.Name, "-pidfile", vm.path(".pid"), "-M", "q35", "-accel", string(vm.accel))
	if vm.accel == AccelKVM {
		c.Add("-cpu", "host")
	} else {
		// RDRAND seeds the kernel's random pool at once: without it the
		// agent's first getrandom blocks for seconds under TCG. No CX16:
		// QEMU 7.2's TCG corrupts EFLAGS around a per-CPU cmpxchg16b
		// interrupted on a busy host, and 6.12's SLUB fast path (which uses
		// it when present) double-faulted in a third of boots; without
		// the flag the kernel takes its emulated path. Not "max": 6.12
		// double-faults with it too.
		c.Add("-cpu", "qemu64,+rdrand,-cx16")
	}
	c.Add("-m", strconv.Itoa(o.MemoryMiB), "-smp", strconv.Itoa(o.CPUs),
		"-nographic", "-nodefaults", "-no-user-config", "-no-reboot",
		"-kernel", o.Kernel)
	if o.Initramfs != "" {
		c.Add("-initrd", o.Initramfs)
	}
	appendArgs := []string{DefaultAppend}
	if vm.accel != AccelKVM {
		appendArgs = append(appendArgs, TCGAppend)
	}
	c.Add("-append", strings.Join(append(appendArgs, o.Append...), " "))
	for _, d := range devs {
		if err := d.Render(c); err != nil {
			return nil, err
		}
	}
	c.Add(o.ExtraArgs...)
	return c, nil
}
