package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The JUnit files under testdata/junit were written by Ginkgo v2.34 (the
// CLI pinned in go.mod, --junit-report) from two small suites run three
// times: on "5.10" every spec passes; on "7.2" a spec fails and one is
// skipped; on "4.19" the BeforeSuite fails the way a datapath the kernel
// refuses fails it. The 5.10 and 7.2 files carry the kernel properties
// make e2e adds (e2e/runner, recordKernel); the 4.19 file has none and
// sits in a directory named junit-4.19, as the workflow downloads it.
const junitDir = "testdata/junit"

// report merge prints one row per suite, one column per kernel ordered by
// version, passed/failed/skipped per cell (a failed BeforeSuite is one
// failure, a passed one nothing), every failure with its message, and
// exits 1 naming how many specs failed where.
func TestReportMergeText(t *testing.T) {
	out, errOut, code := runCLI(t, "report", "merge", junitDir)
	want := `kernel 4.19: - (testdata/junit/junit-4.19/junit.xml; kernel named by the directory)
kernel 5.10: 5.10.0-46-cloud-amd64 (testdata/junit/reports-5.10/junit.xml)
kernel 7.2: 7.2.12+deb14-cloud-amd64 (testdata/junit/reports-7.2/junit.xml)

SUITE           4.19   5.10   7.2
pod-to-service  0/1/0  3/0/0  1/1/1
no-backend      2/0/0  2/0/0  2/0/0
total           2/1/0  5/0/0  3/1/1
(passed/failed/skipped; - did not run)

failed:
  4.19  pod-to-service  [BeforeSuite]
      lab: cluster pod-to-service: node1: node-setup: load bpf_lxc: program hoplab_from_container on kernel 4.19.304: verifier: math between pkt pointer and register with unbounded min value is not allowed (at insn 642: (0f) r1 += r2)
  7.2  pod-to-service  [It] pod1 → Service 10.224.1.1:80 the reply is reverse-NATed at to-container [journey, reply]
      to-container: ttl: got 62, want 61
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if code != 1 || errOut != "hoplab: report merge: 2 spec(s) failed on 2 of 3 kernel(s)\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// Files passing everything exit 0; naming a file and its directory reads
// it once.
func TestReportMergePassed(t *testing.T) {
	f := filepath.Join(junitDir, "reports-5.10", "junit.xml")
	out, errOut, code := runCLI(t, "report", "merge", f, filepath.Dir(f))
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"total           5/0/0\n", "every spec passed on 1 kernel(s)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

// --markdown gives a GitHub table with a heading that says how it went,
// the releases and the failures; --json the same data structured.
func TestReportMergeMarkdownAndJSON(t *testing.T) {
	out, _, code := runCLI(t, "report", "merge", "--markdown", junitDir)
	if code != 1 {
		t.Errorf("--markdown: exit %d", code)
	}
	for _, want := range []string{
		"### Kernel matrix: 2 spec(s) failed on 2 of 3 kernel(s)\n\n",
		"| suite | 4.19 | 5.10 | 7.2 |\n|---|---|---|---|\n",
		"| pod-to-service | ❌ 1 failed, 0 passed | ✅ 3 passed | ❌ 1 failed, 1 passed, 1 skipped |\n",
		"| **total** | **❌ 1 failed, 2 passed** | **✅ 5 passed** | **❌ 1 failed, 3 passed, 1 skipped** |\n",
		"Kernels: 5.10: `5.10.0-46-cloud-amd64` · 7.2: `7.2.12+deb14-cloud-amd64`\n",
		"- **7.2** pod-to-service: \\[It\\] pod1 → Service 10.224.1.1:80 the reply is reverse-NATed at to-container \\[journey, reply\\]<br>`to-container: ttl: got 62, want 61`\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runCLI(t, "report", "merge", "--json", junitDir)
	var rep mergedReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("--json: exit %d, %v: %s", code, err, out)
	}
	if !rep.Failed || len(rep.Kernels) != 3 || rep.Kernels[2].Name != "7.2" || rep.Kernels[2].From != "property" || rep.Kernels[0].From != "directory" {
		t.Errorf("kernels %+v", rep.Kernels)
	}
	if c := rep.Suites[0].Cells[2]; rep.Suites[0].Suite != "pod-to-service" || c != (mergedCell{Kernel: "7.2", Ran: true, Passed: 1, Failed: 1, Skipped: 1}) {
		t.Errorf("pod-to-service on 7.2: %+v", rep.Suites[0])
	}
	if len(rep.Failures) != 2 || rep.Failures[0].Kernel != "4.19" || rep.Failures[0].Spec != "[BeforeSuite]" {
		t.Errorf("failures %+v", rep.Failures)
	}
}

// A suite absent on a kernel is "-" (not a failure); kernels without the
// property are named by the file, else by the directory.
func TestReportMergeKernelNames(t *testing.T) {
	for path, want := range map[string]string{
		"out/junit-5.4.xml":      "5.4",
		"out/4.14.xml":           "4.14",
		"junit-6.6/junit.xml":    "6.6",
		"reports/6.12/junit.xml": "6.12",
		"x/report.xml":           "x",
	} {
		if got, _ := kernelOfPath(path); got != want {
			t.Errorf("%s: kernel %q, want %q", path, got, want)
		}
	}
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(junitDir, "junit-4.19", "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// Only the no-backend suite, on a kernel the file name gives.
	text := string(src)
	start, end := strings.Index(text, `<testsuite name="pod-to-service"`), strings.Index(text, `<testsuite name="no-backend"`)
	only := filepath.Join(dir, "junit-5.4.xml")
	if err := os.WriteFile(only, []byte(text[:start]+text[end:]), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runCLI(t, "report", "merge", only, filepath.Join(junitDir, "reports-5.10"))
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"kernel 5.4: - (" + only + "; kernel named by the file name)\n", "SUITE           5.4    5.10\n", "pod-to-service  -      3/0/0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if compareVersions("4.19", "5.10") >= 0 || compareVersions("5.4", "5.10") >= 0 || compareVersions("6.12", "7.2") >= 0 || compareVersions("7.2", "user1") >= 0 {
		t.Error("kernels out of version order")
	}
}

// Bad input ends the command with one line naming the file.
func TestReportMergeBadInput(t *testing.T) {
	dir := t.TempDir()
	copyTo := func(name string) string {
		b, err := os.ReadFile(filepath.Join(junitDir, "reports-5.10", "junit.xml"))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	twice := copyTo("again/junit.xml")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"testdata/junit-bad/malformed.xml"}, "hoplab: report merge: testdata/junit-bad/malformed.xml: not JUnit XML: XML syntax error on line 3: element <testcase> closed by </testsuites>\n"},
		{[]string{"testdata/junit-bad/not-junit.xml"}, "hoplab: report merge: testdata/junit-bad/not-junit.xml: not a JUnit report (root element <coverage>, want <testsuites> or <testsuite>)\n"},
		{[]string{junitDir, "testdata/no/such.xml"}, "hoplab: report merge: testdata/no/such.xml: no such file or directory\n"},
		{[]string{empty}, "hoplab: report merge: " + empty + ": no junit*.xml file in it\n"},
		{[]string{filepath.Join(junitDir, "reports-5.10"), twice}, "hoplab: report merge: suite pod-to-service on kernel 5.10 is in both testdata/junit/reports-5.10/junit.xml and " + twice + "\n"},
		{nil, "hoplab: report merge: name the JUnit files or directories to merge\n"},
		{[]string{"--json", "--markdown", junitDir}, "hoplab: report merge: --json or --markdown, not both\n"},
	} {
		out, errOut, code := runCLI(t, append([]string{"report", "merge"}, c.args...)...)
		if code != 1 || out != "" || errOut != c.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", c.args, code, out, errOut, c.want)
		}
	}
}

// A failure's line is what failed, not Gomega's preamble.
func TestMessageLine(t *testing.T) {
	for msg, want := range map[string]string{
		"Unexpected error:\n    <*fmt.wrapError | 0xc0001a2b40>: \n    lab: cluster policy: node1: node-setup: load bpf_lxc: program x on kernel 4.19.304: verifier: bad (full log: /a/verifier-x.log)\n    {msg: \"...\"}\noccurred": "lab: cluster policy: node1: node-setup: load bpf_lxc: program x on kernel 4.19.304: verifier: bad (full log: /a/verifier-x.log)",
		"to-container: ttl: got 62, want 61\nExpected\n    <string>: 1\nto be empty": "to-container: ttl: got 62, want 61",
		"": "",
	} {
		if got := messageLine(msg); got != want {
			t.Errorf("%q: %q, want %q", msg, got, want)
		}
	}
}
