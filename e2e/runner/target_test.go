package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

func TestParseKernelFlag(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(img, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for in, want := range map[string]Target{
		"":                          {},
		"6.12":                      {Series: "6.12"},
		"/k/bzImage-4.19":           {User: "/k/bzImage-4.19"},
		"/k/bzImage,/k/lib/modules": {User: "/k/bzImage,/k/lib/modules"},
		"bzImage":                   {User: "bzImage"}, // an existing file here
	} {
		if got := ParseKernelFlag(in); got != want {
			t.Errorf("ParseKernelFlag(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestParseExtraKernels(t *testing.T) {
	dir := t.TempDir()
	a, b, mods := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "mods")
	os.WriteFile(a, nil, 0o644)
	os.WriteFile(b, nil, 0o644)
	os.Mkdir(mods, 0o755)
	got, err := ParseExtraKernels(a + "," + mods + ", " + b)
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{{User: a + "," + mods}, {User: b}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{mods + "," + a, a + "," + mods + "," + mods, filepath.Join(dir, "missing")} {
		if _, err := ParseExtraKernels(bad); err == nil {
			t.Errorf("ParseExtraKernels(%q) accepted", bad)
		}
	}
}

// A catalogue run never inherits the caller's HOPLAB_KERNEL, and a user
// run passes its kernel as HOPLAB_KERNEL without a series.
func TestTargetEnv(t *testing.T) {
	base := []string{"PATH=/bin", "HOPLAB_KERNEL=/old/bzImage", "HOPLAB_SERIES=5.10"}
	cat := Target{Series: "6.1"}.env(base)
	if !slices.Equal(cat, []string{"PATH=/bin", "HOPLAB_SERIES=6.1"}) {
		t.Errorf("catalogue env = %v", cat)
	}
	user := Target{User: "/k/bz,/k/mods"}.env(base)
	if !slices.Equal(user, []string{"PATH=/bin", "HOPLAB_KERNEL=/k/bz,/k/mods"}) {
		t.Errorf("user env = %v", user)
	}
}

// kernel.json and the JUnit properties name the kernel the guests reported.
func TestRecordKernel(t *testing.T) {
	dir := t.TempDir()
	junit := `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="1"><testsuite name="policy" tests="1"><properties><property name="SuiteSucceeded" value="true"></property></properties><testcase name="x"></testcase></testsuite></testsuites>`
	if err := os.WriteFile(filepath.Join(dir, JUnitReport), []byte(junit), 0o644); err != nil {
		t.Fatal(err)
	}
	r := Result{Series: "4.19", Release: "4.19.304", Image: "/k/bzImage-4.19.304", Suites: reportsWithKernel("4.19.304-hoplab")}
	if err := recordKernel(dir, r); err != nil {
		t.Fatal(err)
	}
	var rec KernelRecord
	b, _ := os.ReadFile(filepath.Join(dir, KernelFile))
	if err := json.Unmarshal(b, &rec); err != nil || rec != (KernelRecord{Series: "4.19", Release: "4.19.304-hoplab", Image: "/k/bzImage-4.19.304"}) {
		t.Errorf("kernel.json = %s (%v)", b, err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, JUnitReport))
	var suites reporters.JUnitTestSuites
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatal(err)
	}
	props := suites.TestSuites[0].Properties
	if props.WithName("hoplab.kernel.release") != "4.19.304-hoplab" || props.WithName("hoplab.kernel.image") != "/k/bzImage-4.19.304" ||
		props.WithName("SuiteSucceeded") != "true" || len(suites.TestSuites[0].TestCases) != 1 {
		t.Errorf("junit after = %s", b)
	}
	var out strings.Builder
	PrintSuites(&out, r)
	if !strings.Contains(out.String(), "kernel 4.19 (4.19.304-hoplab, /k/bzImage-4.19.304)") {
		t.Errorf("summary header: %s", out.String())
	}
}

func reportsWithKernel(release string) []types.Report {
	r := report("policy", true, types.SpecStatePassed)
	r.SpecReports[0].ReportEntries[0].Value = types.WrapEntryValue(release)
	return []types.Report{r}
}

// TestArtifactsDirIsPerUserUnderTMPDIR: the default artifacts directory
// honours TMPDIR and is per user and per run.
func TestArtifactsDirIsPerUserUnderTMPDIR(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	a, err := newArtifactsDir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := newArtifactsDir()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(tmp, fmt.Sprintf("hoplab-e2e-%d", os.Getuid()))
	if filepath.Dir(a) != base || filepath.Dir(b) != base || a == b {
		t.Errorf("artifacts dirs %s and %s, want two under %s", a, b, base)
	}
	if st, err := os.Stat(base); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v; want a private folder", base, st.Mode(), err)
	}
}
