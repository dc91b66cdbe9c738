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
)

// app is what every command shares: the output streams and the logger.
type app struct {
	stdout, stderr io.Writer
	verbose        bool
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
	root := newRoot(&app{stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
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
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelInfo
			if a.verbose {
				level = slog.LevelDebug
			}
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			slog.SetDefault(a.log)
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log debug messages")
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
	add("lab", newVMCmd(a), newKernelsCmd(a), newDoctorCmd(a))
	return root
}

// harnessLogger is the logger handed to the VM harness: warnings only,
// everything with -v (its Info lines carry full QEMU command lines).
func (a *app) harnessLogger() *slog.Logger {
	if a.verbose {
		return a.logger()
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// logger returns the app's logger (set before any command runs).
func (a *app) logger() *slog.Logger {
	if a.log == nil {
		return slog.Default()
	}
	return a.log
}
