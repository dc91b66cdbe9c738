package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

func newVMCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "Hold a topology up in VMs for interactive use",
	}
	cmd.AddCommand(newVMUpCmd(a), newVMDownCmd(a), newVMExecCmd(a))
	return cmd
}

func newVMUpCmd(a *app) *cobra.Command {
	var kernel string
	cmd := &cobra.Command{
		Use:   "up TOPOLOGY [--kernel SERIES|PATH]",
		Short: "Boot a topology and hold it until Ctrl-C or 'hoplab vm down'",
		Long: `Up boots the ToR and the nodes of TOPOLOGY (a file or a shipped topology
name), sets up pods, datapath and BGP, waits for convergence, and serves the
cluster to other hoplab commands (replay, observe, dumps, vm exec) through a
state file in the run directory. It prints what runs and holds until
SIGINT/SIGTERM or 'hoplab vm down', then tears everything down.`,
		Example: `  hoplab vm up pod-to-service
  hoplab vm up ./my-topology.yaml --kernel 5.10`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.vmUp(cmd.Context(), args[0], kernel)
		},
	}
	cmd.Flags().StringVar(&kernel, "kernel", "", "kernel series (5.10, 6.1, 6.12, 7.2) or /path/to/bzImage[,modules-dir] (default: the topology's)")
	return cmd
}

func (a *app) vmUp(ctx context.Context, name, kernel string) error {
	log := a.logger()
	if path, err := cluster.CurrentStateFile(); err == nil {
		return fmt.Errorf("vm up: a cluster is already running (%s); stop it with 'hoplab vm down'", path)
	}
	top, err := a.topology(name)
	if err != nil {
		return fmt.Errorf("vm up: %w", err)
	}
	k := parseKernel(kernel)
	if k.path != "" {
		os.Setenv(vmtest.EnvKernel, k.path)
	}
	log.Info("booting topology", "topology", top.Name, "kernel", firstNonEmpty(k.path, k.series, top.Kernel))
	c, err := cluster.Start(ctx, cluster.Spec{Topology: top, Series: k.series, AgentBinary: selfAgent, Logger: a.harnessLogger(),
		ConsoleLine: func(vm, line string) { log.Debug("console", "vm", vm, "line", line) }})
	if err != nil {
		return fmt.Errorf("vm up: %w", err)
	}
	defer c.Close()
	state, err := c.Serve()
	if err != nil {
		return fmt.Errorf("vm up: %w", err)
	}
	t := c.Timings()
	fmt.Fprintf(a.stdout, "topology %s up on kernel %s (boot %v, setup %v, BGP %v)\n", top.Name, c.Kernel(),
		t.Boot.Round(time.Millisecond), t.Setup.Round(time.Millisecond), t.Converge.Round(time.Millisecond))
	st, err := readClusterState(state)
	if err == nil {
		fs, ferr := vmtest.ReadState(st.Fabric)
		if ferr == nil {
			for _, vm := range fs.VMs {
				fmt.Fprintf(a.stdout, "  %-8s pid %-7d console %s\n", vm.Name, vm.PID, vm.Console)
			}
		}
	}
	for _, n := range top.Nodes {
		var pods []string
		for _, p := range top.PodsOn(n.Name) {
			pods = append(pods, fmt.Sprintf("%s %s", p.Name, p.IP))
		}
		fmt.Fprintf(a.stdout, "  %s (%s, %s): %s\n", n.Name, n.Uplink.Address.Addr(), n.PodCIDR, strings.Join(pods, ", "))
	}
	fmt.Fprintf(a.stdout, "state file %s\nholding until Ctrl-C or 'hoplab vm down' (pid %d)\n", state, os.Getpid())
	<-ctx.Done()
	fmt.Fprintln(a.stdout, "tearing down")
	if err := c.Close(); err != nil {
		return fmt.Errorf("vm up: tear down: %w", err)
	}
	return nil
}

func newVMDownCmd(a *app) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the cluster 'hoplab vm up' holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := cluster.CurrentStateFile()
			if err != nil {
				return fmt.Errorf("vm down: %w", err)
			}
			st, err := readClusterState(path)
			if err != nil {
				return fmt.Errorf("vm down: %w", err)
			}
			if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
				return fmt.Errorf("vm down: signal pid %d: %w", st.PID, err)
			}
			deadline := time.Now().Add(timeout)
			for time.Now().Before(deadline) {
				if !running(st.PID) {
					fmt.Fprintf(a.stdout, "stopped cluster of pid %d\n", st.PID)
					return nil
				}
				time.Sleep(100 * time.Millisecond)
			}
			return fmt.Errorf("vm down: pid %d still runs after %v", st.PID, timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the holder to exit")
	return cmd
}

// running reports whether process pid exists and has not exited (a zombie
// waiting for its parent to reap it has exited).
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z'
	}
	return true
}

func newVMExecCmd(a *app) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "exec NODE -- CMD [ARG...]",
		Short: "Run a command in a VM of the running cluster, through its agent",
		Long: `Exec runs CMD in the VM called NODE (a node or the router) of the cluster
'hoplab vm up' holds, through the guest agent (no shell, no network), prints
its output and exits with its exit status.`,
		Example: `  hoplab vm exec node1 -- ip -br addr
  hoplab vm exec tor -- ip route`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return errors.New("vm exec: want NODE -- CMD [ARG...]")
			}
			return a.vmExec(cmd.Context(), args[0], args[1:], timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "kill the command after this long")
	return cmd
}

func (a *app) vmExec(ctx context.Context, node string, argv []string, timeout time.Duration) error {
	path, err := cluster.CurrentStateFile()
	if err != nil {
		return fmt.Errorf("vm exec: %w", err)
	}
	st, err := readClusterState(path)
	if err != nil {
		return fmt.Errorf("vm exec: %w", err)
	}
	sock, ok := st.Control[node]
	if !ok {
		var names []string
		for n := range st.Control {
			names = append(names, n)
		}
		return fmt.Errorf("vm exec: no VM %q in the running cluster (have: %s)", node, strings.Join(names, ", "))
	}
	cl, err := vmtest.DialControl(sock)
	if err != nil {
		return fmt.Errorf("vm exec: %s: %w", node, err)
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	res, err := cl.Exec(cctx, control.Exec{Argv: argv, Timeout: timeout})
	if err != nil {
		// The call's error names the method: "node1: exec: ...".
		return fmt.Errorf("%s: %w", node, err)
	}
	a.stdout.Write(res.Stdout)
	a.stderr.Write(res.Stderr)
	if res.ExitCode != 0 {
		code := res.ExitCode
		if code < 0 {
			code = 137
		}
		return exitError{code: code}
	}
	return nil
}
