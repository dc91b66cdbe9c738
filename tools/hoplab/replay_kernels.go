package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/tools/replayreport"
	"github.com/hoplab/hoplab/vmtest"
)

// kernelReport is one kernel's replay of the capture.
type kernelReport struct {
	Kernel string         `json:"kernel"`
	Report journey.Report `json:"report"`
	// TookMS is the replay's duration on this kernel, boot and teardown
	// included, in milliseconds.
	TookMS int64 `json:"took_ms"`
}

// kernelDiff is how one packet's journey on a kernel differs from its
// journey on the first kernel.
type kernelDiff struct {
	Index  int    `json:"index"`
	Kernel string `json:"kernel"`
	// FirstHop is the index, in this kernel's journey, of the first hop
	// that differs (in the first kernel's when this kernel lacks it); -1
	// when only packet fields or CT entries differ.
	FirstHop int                 `json:"first_hop"`
	Diffs    []journey.FieldDiff `json:"differences"`
}

// kernelsResult is replay --kernels --json's output.
type kernelsResult struct {
	Kernels     []kernelReport `json:"kernels"`
	Equal       bool           `json:"equal"`
	Differences []kernelDiff   `json:"differences"`
}

// errJourneysDiffer is replay --kernels's error when a kernel's journeys
// are not the first kernel's.
var errJourneysDiffer = errors.New("the journeys differ between kernels")

// minParallelCPUs is the number of cores from which replay --kernels
// boots the kernels' clusters at the same time.
const minParallelCPUs = 4

// replayKernels replays the planned capture on each kernel (at the same
// time when the machine has the cores for it, else one cluster at a time)
// and compares every kernel's journeys with the first kernel's, packet by
// packet: the same hops with the same fields, verdicts, drop reasons and
// CT entries. --diff prints differing journeys side by side; --out writes
// the HTML comparison.
func (a *app) replayKernels(ctx context.Context, f replayFlags, list []string) error {
	if len(list) < 2 {
		return errors.New("replay: --kernels compares kernels: name two or more")
	}
	p, err := a.planReplay(f)
	if err != nil {
		return err
	}
	log := a.logger()
	for _, n := range p.notes {
		log.Info(n)
	}
	plans, err := a.entryPlans(f, p, list)
	if err != nil {
		return err
	}
	runs, err := a.replayEach(ctx, f, plans, list)
	if err != nil {
		return err
	}
	res := kernelsResult{Kernels: runs, Differences: diffKernels(runs)}
	res.Equal = len(res.Differences) == 0
	if f.out != "" {
		paths, err := writeKernelsOut(f.out, f.pcap, p, runs)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		for _, path := range paths {
			log.Info("report written", "html", path)
		}
	}
	switch {
	case f.json:
		err = writeJSON(a.stdout, res)
	case f.diff:
		err = writeKernelsSideBySide(a.stdout, res)
	default:
		err = writeKernelsText(a.stdout, res)
	}
	if err != nil {
		return err
	}
	if !res.Equal {
		return fmt.Errorf("replay: %w: %d packet journey(s) differ from %s's", errJourneysDiffer, len(res.Differences), list[0])
	}
	return nil
}

// splitEntry reads a --kernels entry: a kernel (a series or an image
// path), optionally followed by "@TOPOLOGY", a topology of its own to boot
// on that kernel instead of --topology ("7.2@variant.yaml": the same
// capture through another configuration).
func splitEntry(e string) (kernel, topology string) {
	kernel, topology, _ = strings.Cut(e, "@")
	return kernel, topology
}

// displayName is how text and pages name an entry: as given, but a
// topology of its own by its file's base name ("7.2@variant.yaml").
func displayName(e string) string {
	k, top := splitEntry(e)
	if top == "" {
		return e
	}
	return k + "@" + filepath.Base(top)
}

// entryPlans returns the plan of each entry of list: p, or for an entry
// with a topology of its own, the capture planned through that topology
// (its pods and nodes must place the packets the same way).
func (a *app) entryPlans(f replayFlags, p *replayPlan, list []string) ([]*replayPlan, error) {
	plans := make([]*replayPlan, len(list))
	byTop := map[string]*replayPlan{}
	for i, e := range list {
		_, top := splitEntry(e)
		if top == "" {
			plans[i] = p
			continue
		}
		if byTop[top] == nil {
			g := f
			g.topology = top
			q, err := a.planReplay(g)
			if err != nil {
				return nil, fmt.Errorf("kernel %s: %w", e, err)
			}
			byTop[top] = q
		}
		plans[i] = byTop[top]
	}
	return plans, nil
}

// parallelKernels reports whether the kernels' clusters can boot at the
// same time: with minParallelCPUs cores or more, when every kernel is a
// catalogue series named once (a user's image is passed to the harness in
// the process environment, one at a time).
func parallelKernels(list []string, cpus int) bool {
	if cpus < minParallelCPUs {
		return false
	}
	for i, e := range list {
		k, _ := splitEntry(e)
		if parseKernel(k).path != "" || slices.Contains(list[:i], e) {
			return false
		}
	}
	return true
}

// replayEach replays the plan on every kernel of list, in parallel when
// parallelKernels says so, and returns the reports in list's order.
// HOPLAB_KERNEL is set for a user's image and unset for a series, so a
// kernel of the caller's environment never replaces a series asked for.
func (a *app) replayEach(ctx context.Context, f replayFlags, plans []*replayPlan, list []string) ([]kernelReport, error) {
	prev, had := os.LookupEnv(vmtest.EnvKernel)
	defer func() {
		if had {
			os.Setenv(vmtest.EnvKernel, prev)
		} else {
			os.Unsetenv(vmtest.EnvKernel)
		}
	}()
	os.Unsetenv(vmtest.EnvKernel)
	log := a.logger()
	runs := make([]kernelReport, len(list))
	one := func(ctx context.Context, i int) error {
		e := list[i]
		k, _ := splitEntry(e)
		start := time.Now()
		rep, err := a.replayOn(ctx, f, plans[i], k)
		if err != nil {
			return fmt.Errorf("kernel %s: %w", e, err)
		}
		took := time.Since(start)
		log.Info("replayed", "kernel", e, "release", rep.Kernel, "took", took.Round(100*time.Millisecond))
		runs[i] = kernelReport{Kernel: e, Report: rep, TookMS: took.Milliseconds()}
		return nil
	}
	if !parallelKernels(list, runtime.NumCPU()) {
		for i, e := range list {
			log.Info("replaying", "kernel", e)
			k, _ := splitEntry(e)
			if c := parseKernel(k); c.path != "" {
				os.Setenv(vmtest.EnvKernel, c.path)
			} else {
				os.Unsetenv(vmtest.EnvKernel)
			}
			if err := one(ctx, i); err != nil {
				return nil, err
			}
		}
		return runs, nil
	}
	log.Info("replaying on every kernel at once", "kernels", strings.Join(list, ","), "cpus", runtime.NumCPU())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = one(ctx, i); errs[i] != nil {
				cancel() // the other kernels' replays are moot
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return runs, nil
}

// diffKernels compares every kernel's journeys with the first kernel's
// (replayreport.ComparePackets: both sides count alike; the outer UDP
// source port of tunnelled hops, a per-boot hash, is left out).
func diffKernels(runs []kernelReport) []kernelDiff {
	out := []kernelDiff{}
	if len(runs) == 0 {
		return out
	}
	base := runs[0].Report.Packets
	for _, r := range runs[1:] {
		for i, p := range r.Report.Packets {
			if i >= len(base) {
				break
			}
			d := replayreport.ComparePackets(base[i], p)
			if d.Equal() {
				continue
			}
			first := -1
			if d.First >= 0 {
				first = d.Rows[d.First].B
				if first < 0 {
					first = d.Rows[d.First].A
				}
			}
			out = append(out, kernelDiff{Index: p.Index, Kernel: r.Kernel, FirstHop: first, Diffs: d.FieldDiffs()})
		}
		if len(r.Report.Packets) != len(base) {
			out = append(out, kernelDiff{Index: -1, Kernel: r.Kernel, FirstHop: -1, Diffs: []journey.FieldDiff{{Hop: -1, Field: "packets",
				Want: fmt.Sprint(len(base)), Got: fmt.Sprint(len(r.Report.Packets))}}})
		}
	}
	return out
}

// writeKernelsHeader prints, per kernel, its release, its packets and how
// long its replay took.
func writeKernelsHeader(w io.Writer, res kernelsResult) {
	for _, k := range res.Kernels {
		fmt.Fprintf(w, "kernel %s: %s, %d packet(s), %v\n", displayName(k.Kernel), k.Report.Kernel, len(k.Report.Packets),
			(time.Duration(k.TookMS) * time.Millisecond).Round(100*time.Millisecond))
	}
}

// writeKernelsText prints the kernels, then whether every journey matched
// the first kernel's, else each differing journey's differences.
func writeKernelsText(w io.Writer, res kernelsResult) error {
	first := res.Kernels[0]
	writeKernelsHeader(w, res)
	if res.Equal {
		_, err := fmt.Fprintf(w, "every journey is the same on every kernel as on %s\n", displayName(first.Kernel))
		return err
	}
	for _, d := range res.Differences {
		fmt.Fprintf(w, "\npacket %d on %s differs from %s:\n", d.Index, displayName(d.Kernel), displayName(first.Kernel))
		for _, f := range d.Diffs {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	return nil
}

// writeKernelsSideBySide prints the kernels, then every other kernel's
// journeys beside the first kernel's (replayreport.WriteSideBySide): a
// line per packet that is alike, both journeys for one that differs.
func writeKernelsSideBySide(w io.Writer, res kernelsResult) error {
	writeKernelsHeader(w, res)
	a := replayreport.KernelRun{Name: displayName(res.Kernels[0].Kernel), Report: res.Kernels[0].Report}
	for _, k := range res.Kernels[1:] {
		fmt.Fprintln(w)
		if err := replayreport.WriteSideBySide(w, a, replayreport.KernelRun{Name: displayName(k.Kernel), Report: k.Report}); err != nil {
			return err
		}
	}
	if res.Equal {
		_, err := fmt.Fprintf(w, "\nevery journey is the same on every kernel as on %s\n", a.Name)
		return err
	}
	return nil
}

// kernelsOutPaths names the HTML pages of --out for the kernels after the
// first: out itself when it ends in .html and there is one other kernel,
// OUT-KERNEL.html for several; out/kernels.html, or
// out/kernels-KERNEL.html for several, when out is a directory.
func kernelsOutPaths(out string, others []string) []string {
	var paths []string
	page := strings.HasSuffix(out, ".html")
	for _, k := range others {
		name := fileName(k)
		switch {
		case page && len(others) == 1:
			paths = append(paths, out)
		case page:
			paths = append(paths, strings.TrimSuffix(out, ".html")+"-"+name+".html")
		case len(others) == 1:
			paths = append(paths, filepath.Join(out, "kernels.html"))
		default:
			paths = append(paths, filepath.Join(out, "kernels-"+name+".html"))
		}
	}
	return paths
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)

// fileName turns a kernel entry (a series or an image path, maybe with
// "@TOPOLOGY") into a file name part.
func fileName(e string) string {
	k, top := splitEntry(e)
	if c := parseKernel(k); c.path != "" {
		image, _, _ := strings.Cut(c.path, ",")
		k = filepath.Base(image)
	}
	if top != "" {
		k += "-" + strings.TrimSuffix(filepath.Base(top), filepath.Ext(top))
	}
	return unsafeName.ReplaceAllString(k, "_")
}

// writeKernelsOut writes the HTML comparison of the first kernel with
// each other kernel (kernelsOutPaths) and returns the pages' paths.
func writeKernelsOut(out, pcap string, p *replayPlan, runs []kernelReport) ([]string, error) {
	var others []string
	for _, r := range runs[1:] {
		others = append(others, r.Kernel)
	}
	paths := kernelsOutPaths(out, others)
	a := replayreport.KernelRun{Name: displayName(runs[0].Kernel), Report: runs[0].Report}
	for i, r := range runs[1:] {
		var b bytes.Buffer
		err := replayreport.WriteKernelsHTML(&b, a, replayreport.KernelRun{Name: displayName(r.Kernel), Report: r.Report},
			replayreport.HTMLOptions{Capture: filepath.Base(pcap), Topology: p.top, Notes: p.notes})
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(paths[i]), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(paths[i], b.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	return paths, nil
}
