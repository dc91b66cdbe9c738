package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// mergedReport is report merge's result: a suite × kernel table.
type mergedReport struct {
	Kernels  []mergedKernel `json:"kernels"`
	Suites   []mergedSuite  `json:"suites"`
	Failures []specFailure  `json:"failures"`
	// Failed is true when any spec failed on any kernel.
	Failed bool `json:"failed"`
}

// mergedKernel is one column: a kernel and the files read for it.
type mergedKernel struct {
	Name string `json:"name"`
	// Release is the release the guests reported, "" when no file said.
	Release string `json:"release"`
	// From says where the name was read: "property", "file name" or
	// "directory".
	From  string   `json:"from"`
	Files []string `json:"files"`
}

// mergedSuite is one row: a suite's counts on every kernel, in the order
// of Kernels.
type mergedSuite struct {
	Suite string       `json:"suite"`
	Cells []mergedCell `json:"cells"`
}

// mergedCell is one suite's counts on one kernel; Ran is false when no
// file held the suite for that kernel.
type mergedCell struct {
	Kernel  string `json:"kernel"`
	Ran     bool   `json:"ran"`
	Passed  int    `json:"passed"`
	Failed  int    `json:"failed"`
	Skipped int    `json:"skipped"`
}

// mergeRuns builds the table from every file's suites. Kernels are
// ordered by version (4.19 before 5.10 before 6.12), names that are no
// version last; suites in the order they first appear. The same suite on
// the same kernel in two files is an error naming both.
func mergeRuns(runs []suiteRun) (mergedReport, error) {
	var rep mergedReport
	kernels := map[string]*mergedKernel{}
	type key struct{ suite, kernel string }
	cells := map[key]suiteRun{}
	var suites []string
	for _, r := range runs {
		k := kernels[r.Kernel]
		if k == nil {
			k = &mergedKernel{Name: r.Kernel, From: r.KernelFrom}
			kernels[r.Kernel] = k
		}
		k.Release = cmp.Or(k.Release, r.Release)
		if !slices.Contains(k.Files, r.File) {
			k.Files = append(k.Files, r.File)
		}
		kk := key{r.Suite, r.Kernel}
		if prev, dup := cells[kk]; dup {
			return rep, fmt.Errorf("suite %s on kernel %s is in both %s and %s", r.Suite, r.Kernel, prev.File, r.File)
		}
		cells[kk] = r
		if !slices.Contains(suites, r.Suite) {
			suites = append(suites, r.Suite)
		}
	}
	for _, k := range kernels {
		rep.Kernels = append(rep.Kernels, *k)
	}
	slices.SortFunc(rep.Kernels, func(a, b mergedKernel) int { return compareVersions(a.Name, b.Name) })
	for _, s := range suites {
		row := mergedSuite{Suite: s}
		for _, k := range rep.Kernels {
			r, ok := cells[key{s, k.Name}]
			row.Cells = append(row.Cells, mergedCell{Kernel: k.Name, Ran: ok, Passed: r.Passed, Failed: r.Failed, Skipped: r.Skipped})
		}
		rep.Suites = append(rep.Suites, row)
	}
	for _, k := range rep.Kernels {
		for _, s := range suites {
			rep.Failures = append(rep.Failures, cells[key{s, k.Name}].Failures...)
		}
	}
	if rep.Failures == nil {
		rep.Failures = []specFailure{}
	}
	rep.Failed = len(rep.Failures) > 0
	return rep, nil
}

// totals sums the column of kernel i.
func (r mergedReport) totals(i int) mergedCell {
	t := mergedCell{Kernel: r.Kernels[i].Name}
	for _, s := range r.Suites {
		c := s.Cells[i]
		t.Ran = t.Ran || c.Ran
		t.Passed += c.Passed
		t.Failed += c.Failed
		t.Skipped += c.Skipped
	}
	return t
}

// failedKernels counts the kernels with a failure.
func (r mergedReport) failedKernels() int {
	n := 0
	for i := range r.Kernels {
		if r.totals(i).Failed > 0 {
			n++
		}
	}
	return n
}

// compareVersions orders dotted version names numerically ("5.10" after
// "5.4"); a name that does not start with a number sorts after those that
// do, by name.
func compareVersions(a, b string) int {
	va, oka := versionParts(a)
	vb, okb := versionParts(b)
	switch {
	case oka && okb:
		if c := slices.Compare(va, vb); c != 0 {
			return c
		}
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

// versionParts reads the leading numbers of "5.10", "7.2.12+deb14", ...
func versionParts(s string) ([]int, bool) {
	var out []int
	for _, p := range strings.Split(s, ".") {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		if end == 0 {
			break
		}
		n, _ := strconv.Atoi(p[:end])
		out = append(out, n)
		if end < len(p) {
			break
		}
	}
	return out, len(out) > 0
}
