package vmtest

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// Defaults of [Options].
const (
	// DefaultMemoryMiB is the guest RAM unless WithMemory says otherwise.
	DefaultMemoryMiB = 256
	// MaxMemoryMiB is the most RAM a VM may have.
	MaxMemoryMiB = 512
	// DefaultReadyTimeout bounds the wait for the agent's ready event.
	DefaultReadyTimeout = 60 * time.Second
	// DefaultAppend is the kernel command line every VM gets: the console
	// on ttyS0, a panic ends QEMU at once (with -no-reboot), no crypto
	// self-tests (half a second under TCG), and no bond0 made by a bonding
	// driver built into the kernel (the harness creates its bonds; a
	// loaded module gets max_bonds=0 as a module parameter instead).
	DefaultAppend = "console=ttyS0 panic=-1 oops=panic quiet loglevel=4 cryptomgr.notests 8250.nr_uarts=1 i8042.noaux i8042.nokbd i8042.nopnp no_timer_check bonding.max_bonds=0"
	// TCGAppend is added under TCG: the kernel calibrates its TSC against
	// the PIT while the vCPU thread competes for the host's cores, and on a
	// busy host it sometimes gets it several times wrong, so the guest's
	// clock runs 3-4× fast and BGP hold timers expire. HPET is emulated
	// from the host's clock and keeps time whatever the load
	// (TestGuestClockKeepsTime).
	TCGAppend = "clocksource=hpet"
)

// Accel is a QEMU accelerator.
type Accel string

// Accelerators.
const (
	// AccelAuto probes for KVM and falls back to TCG.
	AccelAuto Accel = ""
	// AccelKVM is hardware virtualisation through /dev/kvm.
	AccelKVM Accel = "kvm"
	// AccelTCG is QEMU's emulator, slower but available everywhere.
	AccelTCG Accel = "tcg"
)

// Options configure one VM. Build them with the With… functions.
type Options struct {
	// Name names the VM in logs and file names; short, unique in its run
	// directory.
	Name string
	// QEMU is the qemu-system-x86_64 binary (env HOPLAB_QEMU).
	QEMU string
	// Kernel is the kernel image: a bzImage or an uncompressed vmlinux
	// (PVH entry).
	Kernel string
	// Initramfs is the initramfs with the agent as /init.
	Initramfs string
	// Append is added to [DefaultAppend] on the kernel command line.
	Append []string
	// MemoryMiB is the guest's RAM.
	MemoryMiB int
	// CPUs is the number of virtual CPUs.
	CPUs int
	// Accel is the accelerator; AccelAuto probes (env HOPLAB_ACCEL).
	Accel Accel
	// NICs are the VM's network cards, in PCI order.
	NICs []*NIC
	// Devices are further devices.
	Devices []Device
	// ExtraArgs are appended to the QEMU command line as they are.
	ExtraArgs []string
	// Dir is the run directory for sockets and artifacts; empty creates
	// one that the VM owns (and removes on Close unless kept).
	Dir string
	// ConsoleLog is the console log file; default Dir/NAME.console.log.
	ConsoleLog string
	// ConsoleLine receives each console line.
	ConsoleLine func(line string)
	// ReadyTimeout bounds the wait for the agent's ready event.
	ReadyTimeout time.Duration
	// EventHandlers receive the agent's events.
	EventHandlers []control.EventHandler
	// Logger is the harness logger.
	Logger *slog.Logger
}

// Option changes [Options].
type Option func(*Options)

// WithName names the VM.
func WithName(name string) Option { return func(o *Options) { o.Name = name } }

// WithQEMU sets the QEMU binary.
func WithQEMU(path string) Option { return func(o *Options) { o.QEMU = path } }

// WithKernel sets the kernel image.
func WithKernel(path string) Option { return func(o *Options) { o.Kernel = path } }

// WithInitramfs sets the initramfs.
func WithInitramfs(path string) Option { return func(o *Options) { o.Initramfs = path } }

// WithAppend adds kernel command line arguments.
func WithAppend(args ...string) Option {
	return func(o *Options) { o.Append = append(o.Append, args...) }
}

// WithMemory sets the guest RAM in MiB (at most [MaxMemoryMiB]).
func WithMemory(mib int) Option { return func(o *Options) { o.MemoryMiB = mib } }

// WithCPUs sets the number of virtual CPUs.
func WithCPUs(n int) Option { return func(o *Options) { o.CPUs = n } }

// WithAccel forces an accelerator.
func WithAccel(a Accel) Option { return func(o *Options) { o.Accel = a } }

// WithNIC adds a NIC.
func WithNIC(n *NIC) Option { return func(o *Options) { o.NICs = append(o.NICs, n) } }

// WithDevice adds a device.
func WithDevice(d Device) Option { return func(o *Options) { o.Devices = append(o.Devices, d) } }

// WithExtraArgs appends raw QEMU arguments.
func WithExtraArgs(args ...string) Option {
	return func(o *Options) { o.ExtraArgs = append(o.ExtraArgs, args...) }
}

// WithDir sets the run directory (shared by the VMs of a fabric).
func WithDir(dir string) Option { return func(o *Options) { o.Dir = dir } }

// WithConsoleLog sets the console log file.
func WithConsoleLog(path string) Option { return func(o *Options) { o.ConsoleLog = path } }

// WithConsoleLine streams the console, line by line, to f.
func WithConsoleLine(f func(line string)) Option {
	return func(o *Options) { o.ConsoleLine = f }
}

// WithReadyTimeout bounds the wait for the agent.
func WithReadyTimeout(d time.Duration) Option { return func(o *Options) { o.ReadyTimeout = d } }

// WithEventHandler receives the agent's events.
func WithEventHandler(h control.EventHandler) Option {
	return func(o *Options) { o.EventHandlers = append(o.EventHandlers, h) }
}

// WithLogger sets the harness logger.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// Environment variables read by [NewOptions].
const (
	// EnvKernel is the kernel image to boot (",modules-dir" may follow).
	EnvKernel = "HOPLAB_KERNEL"
	// EnvInitramfs is the initramfs to boot.
	EnvInitramfs = "HOPLAB_INITRAMFS"
	// EnvQEMU is the QEMU binary.
	EnvQEMU = "HOPLAB_QEMU"
	// EnvAccel forces the accelerator (kvm or tcg).
	EnvAccel = "HOPLAB_ACCEL"
	// EnvKeep keeps run directories when set (not "0" or "false").
	EnvKeep = "HOPLAB_KEEP"
)

// NewOptions applies defaults, the environment and then opts.
func NewOptions(opts ...Option) (*Options, error) {
	o := &Options{
		Name:         "vm",
		QEMU:         "qemu-system-x86_64",
		MemoryMiB:    DefaultMemoryMiB,
		CPUs:         1,
		ReadyTimeout: DefaultReadyTimeout,
		Logger:       slog.Default(),
	}
	if v := os.Getenv(EnvQEMU); v != "" {
		o.QEMU = v
	}
	if v := os.Getenv(EnvKernel); v != "" {
		// HOPLAB_KERNEL=/path/to/bzImage[,modules-dir]: the modules part is
		// for the initramfs builder.
		o.Kernel, _, _ = strings.Cut(v, ",")
	}
	if v := os.Getenv(EnvInitramfs); v != "" {
		o.Initramfs = v
	}
	if v := os.Getenv(EnvAccel); v != "" {
		o.Accel = Accel(v)
	}
	for _, opt := range opts {
		opt(o)
	}
	switch {
	case o.Kernel == "":
		return nil, fmt.Errorf("vm %s: no kernel (WithKernel or %s)", o.Name, EnvKernel)
	case o.MemoryMiB <= 0 || o.MemoryMiB > MaxMemoryMiB:
		return nil, fmt.Errorf("vm %s: memory %d MiB outside 1..%d", o.Name, o.MemoryMiB, MaxMemoryMiB)
	case o.CPUs <= 0:
		return nil, fmt.Errorf("vm %s: %d CPUs", o.Name, o.CPUs)
	case o.Accel != AccelAuto && o.Accel != AccelKVM && o.Accel != AccelTCG:
		return nil, fmt.Errorf("vm %s: unknown accelerator %q (kvm or tcg)", o.Name, o.Accel)
	}
	return o, nil
}

// KeepArtifacts reports whether HOPLAB_KEEP asks to keep run directories.
func KeepArtifacts() bool {
	v := os.Getenv(EnvKeep)
	return v != "" && v != "0" && v != "false"
}
