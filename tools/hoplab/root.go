package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hoplab/hoplab/topologies"
)

// app is what every command shares: the output streams and the logger.
type app struct {
	stdout, stderr io.Writer
	verbose        bool
	logFormat      string
	log            *slog.Logger
	// onObserving, when set, is called once observe's stream flows (tests).
	onObserving func()
}

// exitError carries an exit status other than 1 (vm exec propagates the
// guest command's status) without a message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run executes the command line and returns the process exit status: 0 on
// success, 1 with one line on stderr on error.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "hoplab: internal error: %v\n", r)
			code = 1
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal cancels ctx: the command tears its cluster down
	// and returns. If that takes too long, or at a second signal, the
	// watch kills the VMs and exits.
	watch, done := newInterruptWatch(stderr), make(chan struct{})
	defer close(done)
	go watch.watch(ctx, done)
	root := newRoot(&app{stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if !watch.finish() {
		select {} // the watch is ending the process
	}
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if ctx.Err() != nil {
		// Ctrl-C or SIGTERM: whatever failed, it failed because of it.
		fmt.Fprintf(stderr, "hoplab: interrupted (%s)\n", firstLine(err.Error()))
		return 130
	}
	fmt.Fprintf(stderr, "hoplab: %s\n", strings.TrimSpace(err.Error()))
	return 1
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// newRoot builds the command tree.
func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "hoplab",
		Short: "Show what happens to a packet at every hop of a Cilium-style datapath, on a given kernel",
		Long: `hoplab runs a Cilium-style eBPF datapath and BGP in QEMU VMs on pinned
kernels, replays packets from a capture into a topology, and shows every
hop's rewrites, connection tracking and policy verdicts.`,
		Example: `  hoplab replay --topology docs/examples/bug-report/topology.yaml --pcap docs/examples/bug-report/capture.pcap
  hoplab policy trace --topology policy --src pod1 --dst pod4 --dport 9999
  hoplab vm up pod-to-service`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			h, err := a.handler(slog.LevelInfo)
			if err != nil {
				return err
			}
			a.log = slog.New(h)
			slog.SetDefault(a.log)
			return nil
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log debug messages (in slog's text format)")
	root.PersistentFlags().StringVar(&a.logFormat, "log-format", "", "log records in slog's `text` or `json` format instead of plain note:/warning: lines")
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddGroup(
		&cobra.Group{ID: "journeys", Title: "Journeys:"},
		&cobra.Group{ID: "state", Title: "Datapath state of the running cluster:"},
		&cobra.Group{ID: "lab", Title: "Lab:"},
	)
	add := func(id string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = id
			root.AddCommand(c)
		}
	}
	add("journeys", newReplayCmd(a), newObserveCmd(a), newPolicyCmd(a))
	add("state", newDumpCmds(a)...)
	add("lab", newVMCmd(a), newKernelsCmd(a), newVerifierCmd(a), newDoctorCmd(a), newReportCmd(a), newStudyCmd(a))
	return root
}

// handler returns the log handler for records of level min and above:
// plain note:/warning: lines by default, slog's text format with -v (debug
// included) or --log-format text, JSON with --log-format json.
func (a *app) handler(min slog.Level) (slog.Handler, error) {
	if a.verbose {
		min = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: min}
	switch a.logFormat {
	case "json":
		return slog.NewJSONHandler(a.stderr, opts), nil
	case "text":
		return slog.NewTextHandler(a.stderr, opts), nil
	case "":
		if a.verbose {
			return slog.NewTextHandler(a.stderr, opts), nil
		}
		return newPlainHandler(a.stderr, min), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", a.logFormat)
}

// harnessLogger is the logger handed to the VM harness: warnings only,
// everything with -v (its Info lines carry full QEMU command lines).
func (a *app) harnessLogger() *slog.Logger {
	if a.verbose {
		return a.logger()
	}
	h, err := a.handler(slog.LevelWarn)
	if err != nil {
		return a.logger()
	}
	return slog.New(h)
}

// warnTopology prints a topology warning the way compilers do
// ("file:line:col: warning: msg"), or as a log record when a log format
// was asked for.
func (a *app) warnTopology(w topologies.Warning) {
	if a.verbose || a.logFormat != "" {
		a.logger().Warn(w.Msg, "at", fmt.Sprintf("%s:%d:%d", w.File, w.Line, w.Col))
		return
	}
	out := a.stderr
	if out == nil {
		out = os.Stderr
	}
	fmt.Fprintln(out, w.String())
}

// logger returns the app's logger (set before any command runs).
func (a *app) logger() *slog.Logger {
	if a.log == nil {
		return slog.Default()
	}
	return a.log
}
