package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hoplab/hoplab/datapath"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/kernels"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// verifierRun is what one kernel's verifier said of every program.
type verifierRun struct {
	// Kernel is the series or image asked for, Release what the guest
	// reported.
	Kernel  string                  `json:"kernel"`
	Release string                  `json:"release"`
	Stats   []datapath.ProgramStats `json:"programs"`
}

func newVerifierCmd(a *app) *cobra.Command {
	var (
		list   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "verifier [--kernels all|SERIES,...|/path/bzImage[,modules-dir]] [--json]",
		Short: "Load the datapath on each kernel and show what its verifier thought of every program",
		Long: `Verifier boots one VM per kernel, loads the datapath in it on its own (no
topology) with the verifier's statistics, and prints a program × kernel
table: the instructions the verifier processed (the number 4.19 limits to
131072) and, where the kernel reports it (5.2 and later), the verification
time. The programs' sizes (instruction slots, limited to 4096 on 4.19) come
first. A program a kernel rejects fails the command with the verifier log's
tail, the program and the kernel.

--kernels takes "all" (every catalogue series, the default), series
("5.10,7.2") and your own images (a path: /path/bzImage or
/path/bzImage,modules-dir), separated by ';' when an image has a modules
directory.`,
		Example: `  hoplab verifier
  hoplab verifier --kernels 6.1 --json
  hoplab verifier --kernels '5.10;/path/to/bzImage-4.19.304,/path/to/lib/modules/4.19.304'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := verifierKernels(list)
			if err != nil {
				return fmt.Errorf("verifier: %w", err)
			}
			var runs []verifierRun
			for _, k := range ks {
				r, err := a.verifierRun(cmd.Context(), k)
				if err != nil {
					return fmt.Errorf("verifier: kernel %s: %w", k, err)
				}
				runs = append(runs, r)
			}
			if asJSON {
				return writeJSON(a.stdout, runs)
			}
			return writeVerifierTable(a.stdout, runs)
		},
	}
	cmd.Flags().StringVar(&list, "kernels", "all", "kernels: all, series (5.10,6.1) or image paths, ';'-separated when an image has a modules directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the statistics as JSON")
	return cmd
}

// verifierKernels expands --kernels: "all" is every catalogue series in
// the lock's order; a list is split on ';' when it holds one, else on ','
// (a path with a modules directory needs ';' between kernels).
func verifierKernels(list string) ([]string, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		lock, err := kernels.DefaultLock()
		if err != nil {
			return nil, err
		}
		var out []string
		for _, e := range lock.Kernels {
			if e.Flavour == kernels.DefaultFlavour && !slices.Contains(out, e.Series) {
				out = append(out, e.Series)
			}
		}
		return out, nil
	}
	sep := ","
	if strings.Contains(list, ";") {
		sep = ";"
	}
	var out []string
	for _, k := range strings.Split(list, sep) {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--kernels: no kernel named")
	}
	return out, nil
}

// verifierRun boots one VM on kernel k (a series, or an image path) with
// this binary as its agent and asks it for the verifier's statistics.
func (a *app) verifierRun(ctx context.Context, k string) (verifierRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	choice := parseKernel(k)
	if choice.path != "" {
		// The user's image, as replay --kernel takes it.
		prev, had := os.LookupEnv(vmtest.EnvKernel)
		os.Setenv(vmtest.EnvKernel, choice.path)
		defer func() {
			if had {
				os.Setenv(vmtest.EnvKernel, prev)
			} else {
				os.Unsetenv(vmtest.EnvKernel)
			}
		}()
	}
	boot, err := vmtest.PrepareBoot(ctx, vmtest.BootSpec{Series: choice.series, AgentBinary: selfAgent})
	if err != nil {
		return verifierRun{}, err
	}
	opts := append(boot.Options(), vmtest.WithName("verifier"), vmtest.WithLogger(a.harnessLogger()), vmtest.WithConsoleLine(func(string) {}))
	vm, err := vmtest.Start(ctx, opts...)
	if err != nil {
		return verifierRun{}, err
	}
	defer vm.Close()
	stats, err := nodeapi.NewClient(vm.Name(), vm).VerifierStats(ctx)
	if err != nil {
		return verifierRun{}, err
	}
	return verifierRun{Kernel: k, Release: vm.Ready().Release, Stats: stats}, nil
}

// writeVerifierTable prints one row per program: its size, then per
// kernel the processed instructions and, when reported, the verification
// time ("23172" or "6650 (1.2ms)").
func writeVerifierTable(w io.Writer, runs []verifierRun) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"PROGRAM", "INSNS"}
	for _, r := range runs {
		head = append(head, r.Release)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	var programs []string
	size := map[string]int{}
	cells := map[string][]string{}
	for i, r := range runs {
		for _, s := range r.Stats {
			name := s.Object + "/" + s.Program
			if _, ok := cells[name]; !ok {
				programs = append(programs, name)
				cells[name] = make([]string, len(runs))
			}
			size[name] = s.Insns
			cell := "?"
			if s.Processed >= 0 {
				cell = strconv.Itoa(s.Processed)
			}
			if s.Verify > 0 {
				cell += " (" + s.Verify.Round(10*time.Microsecond).String() + ")"
			}
			cells[name][i] = cell
		}
	}
	for _, p := range programs {
		row := []string{p, strconv.Itoa(size[p])}
		for _, c := range cells[p] {
			row = append(row, cmp.Or(c, "-"))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}
