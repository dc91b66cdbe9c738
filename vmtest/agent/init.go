package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// ErrNotInit is returned by [Main] when the process is not PID 1.
var ErrNotInit = errors.New("hoplab-agent runs only as init (PID 1) of a hoplab VM")

// PortWait bounds how long the agent waits for its virtio-serial port.
const PortWait = 10 * time.Second

type mount struct {
	source, target, fstype string
	optional               bool
}

var mounts = []mount{
	{"proc", "/proc", "proc", false},
	{"sysfs", "/sys", "sysfs", false},
	{"devtmpfs", "/dev", "devtmpfs", false},
	{"tmpfs", "/run", "tmpfs", false},
	{"tmpfs", "/tmp", "tmpfs", false},
	{"bpf", "/sys/fs/bpf", "bpf", true},
	{"tracefs", "/sys/kernel/tracing", "tracefs", true},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", true},
}

// Main runs the agent as the VM's init: it mounts the pseudo file systems,
// reopens /dev/console, loads the modules of the initramfs, opens the
// control port, reports ready and serves the [Default] agent. On a fatal
// error it sends the error on the control channel (when open) and on the
// console, then powers the VM off. As init Main does not return; it returns
// [ErrNotInit] at once when the process is not PID 1 (someone ran the agent
// by hand, or exec ran /init in a guest), without touching the machine.
func Main() error {
	if os.Getpid() != 1 {
		return ErrNotInit
	}
	start := time.Now()
	console := io.Writer(os.Stderr)
	err := run(start, &console)
	if err == nil {
		err = errors.New("control channel closed")
	}
	fmt.Fprintf(console, "hoplab-agent: fatal: %v\n", err)
	if Default.Emit(control.EventFatal, control.Fatal{Error: err.Error()}) == ErrNotConnected {
		// The failure came before the port was open: open it now if the
		// modules it needs are in, so the host learns why.
		if port, perr := OpenPort(control.PortName, 2*time.Second); perr == nil {
			Default.Attach(control.NewConn(port, port))
			_ = Default.Emit(control.EventFatal, control.Fatal{Error: err.Error()})
		}
	}
	Poweroff()
	select {}
}

func run(start time.Time, console *io.Writer) error {
	steps := map[string]time.Duration{}
	step := func(name string, since time.Time) { steps[name] = time.Since(since) }

	t := time.Now()
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil && !m.optional {
			return fmt.Errorf("mkdir %s: %w", m.target, err)
		}
		err := unix.Mount(m.source, m.target, m.fstype, 0, "")
		if err != nil && !errors.Is(err, unix.EBUSY) && !m.optional {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		for _, fd := range []int{0, 1, 2} {
			_ = unix.Dup3(int(c.Fd()), fd, 0)
		}
		c.Close()
		*console = os.Stderr
	}
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	_ = unix.Sethostname([]byte("hoplab"))
	step("mount", t)

	log := slog.New(&eventHandler{next: slog.NewTextHandler(*console, &slog.HandlerOptions{Level: slog.LevelInfo}), agent: Default})
	Default.log = log
	slog.SetDefault(log)
	if limit, err := setMemoryLimit("/proc/meminfo"); err != nil {
		log.Warn("no Go memory limit", "err", err)
	} else {
		log.Debug("Go memory limit", "MiB", limit>>20)
	}

	t = time.Now()
	mods, err := ReadModuleOrder(ModulesDir)
	if err != nil {
		return fmt.Errorf("read module order: %w", err)
	}
	loaded, err := LoadModules(mods)
	if err != nil {
		return err
	}
	step("modules", t)

	t = time.Now()
	port, err := OpenPort(control.PortName, PortWait)
	if err != nil {
		return err
	}
	step("port", t)

	conn := control.NewConn(port, port)
	Default.Attach(conn)
	ready := control.Ready{Modules: loaded, Steps: steps}
	u, _ := uname()
	ready.Release = u.Release
	ready.InitStart, ready.Uptime = handoverAndNow(start)
	if err := Default.Emit(control.EventReady, ready); err != nil {
		return err
	}
	return Default.Serve(context.Background(), conn)
}

// OpenPort waits up to wait for the virtio-serial port called name to
// appear and opens its device node.
func OpenPort(name string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		if dev := findPort(name); dev != "" {
			f, err := os.OpenFile(dev, os.O_RDWR, 0)
			if err == nil {
				return f, nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("open control port: %w", err)
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("virtio-serial port %q not found after %v (is virtio_console loaded?)", name, wait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func findPort(name string) string {
	paths, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return filepath.Join("/dev", filepath.Base(filepath.Dir(p)))
		}
	}
	return ""
}

// bootTime is the time since the kernel started.
func bootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// processStart is the time since boot at which the kernel handed over to
// this process: the kernel log's "Run /init as init process" record, else
// the process's start time from /proc/self/stat (for PID 1 that is when
// the kernel_init thread was forked, before the initcalls), else estimated
// from start.
func processStart(start time.Time) time.Duration {
	if d, ok := execTimeFromKmsg(); ok {
		return d
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			// starttime is field 22; f[0] is field 3.
			if len(f) > 19 {
				if ticks, err := strconv.ParseInt(f[19], 10, 64); err == nil {
					return time.Duration(ticks) * 10 * time.Millisecond
				}
			}
		}
	}
	return bootTime() - time.Since(start)
}

// eventHandler logs to the console and sends each record as a log event.
type eventHandler struct {
	next  slog.Handler
	agent *Agent
	attrs []slog.Attr
}

// Enabled implements slog.Handler.
func (h *eventHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle implements slog.Handler: it sends the record as a log event, then
// logs it to the console.
func (h *eventHandler) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	_ = h.agent.Emit(control.EventLog, control.Log{Level: r.Level.String(), Msg: b.String()})
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &eventHandler{next: h.next.WithAttrs(as), agent: h.agent, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

// WithGroup implements slog.Handler.
func (h *eventHandler) WithGroup(name string) slog.Handler {
	return &eventHandler{next: h.next.WithGroup(name), agent: h.agent, attrs: h.attrs}
}

// readyMarker is the kernel log record the agent writes when it is ready.
const readyMarker = "hoplab-agent: ready"

// handoverAndNow returns when the kernel handed over to init and the time
// now, both since boot on the kernel log's clock: the kernel's "Run /init
// as init process" record and a marker record the agent writes. Without
// /dev/kmsg it falls back to [processStart] and CLOCK_BOOTTIME, whose
// clocks differ by some milliseconds.
func handoverAndNow(start time.Time) (handover, now time.Duration) {
	if w, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		_, werr := w.WriteString(readyMarker + "\n")
		w.Close()
		if werr == nil {
			if h, ok := kmsgTime(isInitRecord); ok {
				if n, ok := kmsgTime(func(m string) bool { return strings.HasPrefix(m, readyMarker) }); ok {
					return h, n
				}
			}
		}
	}
	return processStart(start), bootTime()
}

func isInitRecord(msg string) bool {
	return strings.HasPrefix(msg, "Run ") && strings.Contains(msg, " as init process")
}

// execTimeFromKmsg returns the timestamp of the kernel's "Run /init as init
// process" record.
func execTimeFromKmsg() (time.Duration, bool) { return kmsgTime(isInitRecord) }

// kmsgTime returns the timestamp of the first /dev/kmsg record whose
// message matches.
func kmsgTime(match func(msg string) bool) (time.Duration, bool) {
	f, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	buf := make([]byte, 8192)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if errors.Is(err, unix.EPIPE) {
				continue // a record was overwritten; go on with the next
			}
			return 0, false
		}
		// A record is "prio,seq,usec,flags;message\n".
		rec := string(buf[:n])
		head, msg, ok := strings.Cut(rec, ";")
		if !ok || !match(msg) {
			continue
		}
		fields := strings.Split(head, ",")
		if len(fields) < 3 {
			return 0, false
		}
		usec, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			return 0, false
		}
		return time.Duration(usec) * time.Microsecond, true
	}
}
