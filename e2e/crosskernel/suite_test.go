//go:build vm

package crosskernel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/fixtures"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/tools/replayreport"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/kernels"
)

const topology = "pod-to-service"

// EnvReference names the reference kernel's catalogue series.
const EnvReference = "HOPLAB_CROSS_KERNEL"

// kernel is one of the two kernels: a catalogue series, or a user's image
// ("IMAGE[,MODULES-DIR]", as HOPLAB_KERNEL takes it).
type kernel struct {
	name, series, image string
}

// kernelRun is what one kernel gave: its release and, per fixture, the
// journeys or the replay's error.
type kernelRun struct {
	kernel
	release string
	reports map[string]journey.Report
	errs    map[string]error
}

func TestCrossKernel(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "cross-kernel")
}

// twoKernels returns the kernel under test and the reference (see the
// package doc).
func twoKernels(top *topologies.Topology) (under, ref kernel) {
	if img := os.Getenv(kernels.EnvKernel); img != "" {
		image, _, _ := strings.Cut(img, ",")
		under = kernel{name: filepath.Base(image), image: img}
	} else {
		s := lab.Series()
		if s == "" {
			s = top.Kernel
		}
		if s == "" {
			s = kernels.DefaultSeries
		}
		under = kernel{name: s, series: s}
	}
	r := os.Getenv(EnvReference)
	if r == "" {
		newest := kernels.Series[len(kernels.Series)-1]
		r = newest
		if under.series == newest {
			r = kernels.Series[0]
		}
	}
	return under, kernel{name: r, series: r}
}

// capabilities are the replay options of the fixture capabilities
// (fixtures/README.md), as lab.FixtureSpecs sets them.
var capabilities = map[string]func(*cluster.ReplayOptions){
	"tcp-ack-rewrite":        func(o *cluster.ReplayOptions) { o.TCPAckRewrite = true },
	"client-rst-suppression": func(o *cluster.ReplayOptions) { o.SuppressRST = true },
}

// artifacts is the suite's artifacts directory, "" without one.
func artifacts() string {
	if dir := os.Getenv(lab.EnvArtifacts); dir != "" {
		return filepath.Join(dir, "cross-kernel")
	}
	return ""
}

// replayAll boots the topology on k, replays every fixture named (CT and
// metrics reset between them) and tears the cluster down. A user's image
// is handed to the harness in HOPLAB_KERNEL, which is unset for a series.
func replayAll(ctx context.Context, top *topologies.Topology, k kernel, names []string) kernelRun {
	run := kernelRun{kernel: k, reports: map[string]journey.Report{}, errs: map[string]error{}}
	prev, had := os.LookupEnv(kernels.EnvKernel)
	defer func() {
		if had {
			os.Setenv(kernels.EnvKernel, prev)
		} else {
			os.Unsetenv(kernels.EnvKernel)
		}
	}()
	if k.image != "" {
		os.Setenv(kernels.EnvKernel, k.image)
	} else {
		os.Unsetenv(kernels.EnvKernel)
	}
	spec := cluster.Spec{Topology: top, Series: k.series, ConsoleLine: func(string, string) {}}
	if dir := artifacts(); dir != "" {
		Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
		console, err := os.Create(filepath.Join(dir, "console-"+fileSafe(k.name)+".log"))
		Expect(err).NotTo(HaveOccurred())
		defer console.Close()
		spec.ConsoleLine = func(vm, line string) { fmt.Fprintf(console, "%s: %s\n", vm, line) }
		spec.Logger = slog.New(slog.NewTextHandler(console, nil))
		spec.ArtifactsDir = filepath.Join(dir, fileSafe(k.name))
	}
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, lab.StartTimeout)
	defer cancel()
	c, err := cluster.Start(sctx, spec)
	Expect(err).NotTo(HaveOccurred(), "kernel %s", k.name)
	defer c.Close()
	run.release = c.Kernel()
	up := time.Since(start)
	l := &lab.Lab{Cluster: c, Topology: top}
	for _, name := range names {
		run.reports[name], run.errs[name] = replayFixture(ctx, l, name)
	}
	GinkgoWriter.Printf("kernel %s (%s): up in %v, %d fixtures replayed in %v\n", k.name, run.release,
		up.Round(time.Millisecond), len(names), (time.Since(start) - up).Round(time.Millisecond))
	return run
}

// replayFixture replays fixture name at its injection point for the
// lab's topology, with the capabilities it requires, on a reset cluster.
func replayFixture(ctx context.Context, l *lab.Lab, name string) (journey.Report, error) {
	exp, err := fixtures.Load(name)
	if err != nil {
		return journey.Report{}, err
	}
	frames, _, err := l.Fixture(name)
	if err != nil {
		return journey.Report{}, err
	}
	var opts cluster.ReplayOptions
	for _, r := range exp.Requires {
		set, ok := capabilities[r]
		if !ok {
			return journey.Report{}, fmt.Errorf("fixture %s requires %q, which replay does not provide", name, r)
		}
		set(&opts)
	}
	if err := l.Reset(ctx); err != nil {
		return journey.Report{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, lab.ReplayTimeout)
	defer cancel()
	return l.Replay(rctx, frames, opts)
}

var _ = Describe("the pod-to-service fixtures replayed on two kernels", Ordered, ContinueOnFailure, Label("cross-kernel"), func() {
	var runs [2]kernelRun
	names := lab.CasesFor(topology)

	BeforeAll(func(ctx SpecContext) {
		testreq.Command(GinkgoTB(), "qemu-system-x86_64", "apt-get install qemu-system-x86")
		vmtest.HandleSignals()
		top, err := topologies.Open(topology)
		Expect(err).NotTo(HaveOccurred())
		under, ref := twoKernels(top)
		start := time.Now()
		for i, k := range []kernel{under, ref} {
			runs[i] = replayAll(ctx, top, k, names)
		}
		// The kernel under test is the run's kernel (the e2e runner
		// checks it is the one it prepared).
		AddReportEntry(lab.ReportKernel, runs[0].release, ReportEntryVisibilityNever)
		AddReportEntry(lab.ReportStartup, time.Since(start).Round(time.Millisecond).String(), ReportEntryVisibilityNever)
	}, NodeTimeout(10*time.Minute))

	for _, name := range names {
		It(name+": the same journey, hop by hop, on the kernel under test and on the reference", func() {
			a, b := runs[0], runs[1]
			Expect(a.errs[name]).NotTo(HaveOccurred(), "fixture %s on kernel %s", name, a.name)
			Expect(b.errs[name]).NotTo(HaveOccurred(), "fixture %s on kernel %s", name, b.name)
			ra, rb := a.reports[name], b.reports[name]
			Expect(ra.Packets).NotTo(BeEmpty(), "fixture %s on kernel %s", name, a.name)
			for _, p := range append(append([]journey.Packet(nil), ra.Packets...), rb.Packets...) {
				Expect(p.Hops).NotTo(BeEmpty(), "fixture %s, packet %d: no hop observed", name, p.Index)
			}
			ka := replayreport.KernelRun{Name: a.name, Report: ra}
			kb := replayreport.KernelRun{Name: b.name, Report: rb}
			differ := len(ra.Packets) != len(rb.Packets)
			for _, d := range replayreport.CompareReports(ra, rb) {
				differ = differ || !d.Equal()
			}
			if !differ {
				return
			}
			var text bytes.Buffer
			Expect(replayreport.WriteSideBySide(&text, ka, kb)).To(Succeed())
			if dir := artifacts(); dir != "" {
				saveDiff(dir, name, ka, kb)
			}
			Fail(fmt.Sprintf("fixture %s: the journeys on %s (%s) and %s (%s) differ:\n%s", name, a.name, a.release, b.name, b.release, text.String()))
		})
	}
})

// saveDiff writes both reports and the HTML comparison of fixture name
// into dir.
func saveDiff(dir, name string, a, b replayreport.KernelRun) {
	for _, k := range []replayreport.KernelRun{a, b} {
		if data, err := json.MarshalIndent(k.Report, "", "  "); err == nil {
			_ = os.WriteFile(filepath.Join(dir, name+"-"+fileSafe(k.Name)+".json"), data, 0o644)
		}
	}
	var page bytes.Buffer
	top, _ := topologies.Open(topology)
	if err := replayreport.WriteKernelsHTML(&page, a, b, replayreport.HTMLOptions{Capture: name + ".pcap", Topology: top}); err == nil {
		path := filepath.Join(dir, "kernels-"+name+".html")
		_ = os.WriteFile(path, page.Bytes(), 0o644)
		GinkgoWriter.Printf("the two paths side by side: %s\n", path)
	}
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+' {
			return r
		}
		return '_'
	}, s)
}
