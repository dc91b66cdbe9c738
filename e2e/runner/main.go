// Command runner is `make e2e` and `make e2e-matrix`: it fetches the guest
// kernel through the harness's cache (package vmtest/kernels), runs the e2e
// suites with Ginkgo (JUnit and JSON reports, artifacts in a directory it
// prints), and prints a summary per suite: specs, passed, failed, wall time.
// With -matrix it does so for every catalogue series in turn and ends with a
// table per kernel.
//
//	go run ./e2e/runner [-kernel 6.12|/path/bzImage[,modules]] [-matrix [-extra-kernels ...]] [-label-filter bgp] [-artifacts DIR] [-verifier=false] [SUITE...]
//
// A user's own kernel (any release, 4.19 included) is given as a path to
// -kernel, or as HOPLAB_KERNEL; -extra-kernels (default $EXTRA_KERNELS)
// adds such kernels to the matrix. The summary, the JUnit report's
// properties and kernel.json in the artifacts name the kernel that ran.
//
// Before the suites, one VM loads the datapath on the kernel with the
// verifier's statistics (`hoplab verifier --json`) into verifier.json in
// the artifacts (-verifier=false leaves it out). A suite that fails
// because the kernel refused a program (its failure names the verifier
// log the cluster kept) gets the log's last lines in its JUnit failure
// message and under the summary.
//
// The suites are the packages under e2e/ that hold Ginkgo suites (default:
// all of them). Artifacts of a run that failed (VM consoles, journeys of
// every replay, the VMs' run directories, the reports) are kept; after a
// run that passed only the reports are. HOPLAB_KEEP keeps everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hoplab/hoplab/vmtest/kernels"
)

// Suites are the e2e suite packages, in the order they run.
var Suites = []string{"./e2e/podtoservice", "./e2e/samenode", "./e2e/policy", "./e2e/nobackend", "./e2e/multibackend", "./e2e/tunnel", "./e2e/host", "./e2e/socketlb", "./e2e/nodeport", "./e2e/l7", "./e2e/crosskernel"}

func main() {
	var (
		kernel  = flag.String("kernel", os.Getenv("HOPLAB_SERIES"), "kernel series to boot (default: the topologies', "+kernels.DefaultSeries+"), or a user kernel /path/bzImage[,modules-dir]")
		matrix  = flag.Bool("matrix", false, "run the suites on every catalogue series in turn")
		extra   = flag.String("extra-kernels", os.Getenv("EXTRA_KERNELS"), "with -matrix: user kernels to add, /path/bzImage[,modules-dir],...")
		labels  = flag.String("label-filter", "", "Ginkgo label filter (journey, reply, same-node, policy, drops, client, bond, bgp, fixture)")
		art     = flag.String("artifacts", os.Getenv("E2E_ARTIFACTS"), "artifacts directory (default $E2E_ARTIFACTS, else a new directory under $TMPDIR/hoplab-e2e-UID)")
		verif   = flag.Bool("verifier", true, "record the verifier's statistics of every program on the kernel (verifier.json in the artifacts; one VM more)")
		timeout = flag.Duration("timeout", 20*time.Minute, "bound of one run of the suites")
		lanes   = flag.Int("lanes", envInt("E2E_LANES", 2), "Ginkgo processes running suites side by side, each suite booting its own cluster (default $E2E_LANES, else 2; 1: one after the other)")
	)
	flag.Parse()
	suites := flag.Args()
	if len(suites) == 0 {
		suites = Suites
	}
	// Ctrl-C reaches Ginkgo and the suites through the process group;
	// they tear their VMs down. The runner waits for them.
	signal.Ignore(syscall.SIGINT)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()

	targets := []Target{ParseKernelFlag(*kernel)}
	if targets[0] == (Target{}) && os.Getenv(kernels.EnvKernel) != "" {
		targets[0] = Target{User: os.Getenv(kernels.EnvKernel)}
	}
	if *matrix {
		targets = targets[:0]
		for _, s := range kernels.Series {
			targets = append(targets, Target{Series: s})
		}
		more, err := ParseExtraKernels(*extra)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(2)
		}
		targets = append(targets, more...)
	}
	root := *art
	if root == "" {
		var err error
		if root, err = newArtifactsDir(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(2)
		}
	}
	var results []Result
	failed := false
	for i, t := range targets {
		dir := root
		if *matrix {
			dir = filepath.Join(root, t.Series)
			if t.User != "" {
				dir = filepath.Join(root, fmt.Sprintf("user%d", i-len(kernels.Series)+1))
			}
		}
		r := run(ctx, RunSpec{Target: t, Suites: suites, LabelFilter: *labels, Dir: dir, Timeout: *timeout, Verifier: *verif, Lanes: *lanes})
		results = append(results, r)
		PrintSuites(os.Stdout, r)
		PrintLoadFailures(os.Stdout, r)
		if !r.OK() {
			failed = true
		}
		if ctx.Err() != nil {
			break
		}
	}
	if *matrix {
		PrintMatrix(os.Stdout, results)
	}
	if failed {
		fmt.Printf("\ne2e FAILED: artifacts (consoles, journeys, VM run directories, reports) in %s\n", root)
		os.Exit(1)
	}
	fmt.Printf("\ne2e passed: reports (JUnit, JSON) in %s\n", root)
}

// envInt is the integer in environment variable name, else def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// newArtifactsDir makes a new directory under $TMPDIR/hoplab-e2e-UID: per
// user, so that users sharing a machine do not trip over each other's
// folders.
func newArtifactsDir() (string, error) {
	base := filepath.Join(os.TempDir(), fmt.Sprintf("hoplab-e2e-%d", os.Getuid()))
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("artifacts: %w", err)
	}
	dir, err := os.MkdirTemp(base, time.Now().UTC().Format("20060102-150405-"))
	if err != nil {
		return "", fmt.Errorf("artifacts: %w", err)
	}
	return dir, nil
}

// run prepares the kernel of spec.Target and runs the suites on it.
func run(ctx context.Context, spec RunSpec) Result {
	r := Result{Series: spec.Target.Series, Dir: spec.Dir}
	if r.Series == "" {
		r.Series = kernels.DefaultSeries
	}
	start := time.Now()
	k, err := spec.Target.resolve(ctx, slog.Default())
	if err != nil {
		r.Err = err // Fetch and FromPath name the kernel
		return r
	}
	r.Release, r.Image = k.Version, k.Image
	if spec.Target.User != "" {
		r.Series = k.Series
	}
	r.Fetch = time.Since(start)
	if spec.Verifier {
		if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
			r.Err = fmt.Errorf("artifacts: %w", err)
			return r
		}
		r.Verifier = recordVerifier(ctx, spec.Target, spec.Dir)
	}
	r.Suites, r.Err = runGinkgo(ctx, spec)
	r.Wall = time.Since(start)
	if ran := r.Ran(); ran != "" && ran != r.Release && r.Err == nil {
		r.Err = fmt.Errorf("the suites ran kernel %s, not %s (%s)", ran, r.Release, r.Image)
	}
	if err := recordKernel(spec.Dir, r); err != nil && r.Err == nil {
		r.Err = err
	}
	if r.OK() && os.Getenv("HOPLAB_KEEP") == "" {
		// Passed: keep the reports, drop consoles and journeys.
		_ = os.RemoveAll(filepath.Join(spec.Dir, "suites"))
	}
	return r
}

// errNoReport is returned when Ginkgo wrote no JSON report (it could not
// build or start the suites).
var errNoReport = errors.New("ginkgo wrote no report")
