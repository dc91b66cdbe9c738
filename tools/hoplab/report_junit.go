package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// JUnit property names the e2e runner adds to every test suite of its
// report (e2e/runner, recordKernel): the kernel the suite ran on.
const (
	propKernelSeries  = "hoplab.kernel.series"
	propKernelRelease = "hoplab.kernel.release"
)

// junitSuites is a JUnit report: <testsuites> holding <testsuite>s, or one
// <testsuite> alone (both exist in the wild; Ginkgo writes the first).
type junitSuites struct {
	XMLName xml.Name
	Suites  []junitSuite `xml:"testsuite"`
	// Name, Props and Cases are set when the root is a <testsuite>.
	Name  string          `xml:"name,attr"`
	Props []junitProperty `xml:"properties>property"`
	Cases []junitCase     `xml:"testcase"`
}

// junitSuite is one <testsuite>.
type junitSuite struct {
	Name    string          `xml:"name,attr"`
	Package string          `xml:"package,attr"`
	Props   []junitProperty `xml:"properties>property"`
	Cases   []junitCase     `xml:"testcase"`
}

// junitProperty is one <property name value>.
type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// junitCase is one <testcase>: failed with a <failure> or an <error>,
// skipped with a <skipped>, else passed.
type junitCase struct {
	Name    string         `xml:"name,attr"`
	Status  string         `xml:"status,attr"`
	Failure *junitFailure  `xml:"failure"`
	Error   *junitFailure  `xml:"error"`
	Skipped *junitSkipInfo `xml:"skipped"`
}

// junitFailure is a <failure> or <error>.
type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// junitSkipInfo is a <skipped>.
type junitSkipInfo struct {
	Message string `xml:"message,attr"`
}

func (s junitSuite) prop(name string) string {
	for _, p := range s.Props {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// suiteRun is one test suite of one JUnit file, counted.
type suiteRun struct {
	File, Suite, Kernel, Release string
	// KernelFrom says where Kernel was read: "property", "file name" or
	// "directory".
	KernelFrom              string
	Passed, Failed, Skipped int
	Failures                []specFailure
}

// specFailure is a failed spec (or a failed suite-level node such as
// [BeforeSuite]) and the first line of its message.
type specFailure struct {
	Kernel  string `json:"kernel"`
	Suite   string `json:"suite"`
	Spec    string `json:"spec"`
	Message string `json:"message"`
}

// ginkgoNode matches the node type Ginkgo puts in front of a test case's
// name ("[It] ...", "[BeforeSuite]", "[DeferCleanup (Suite)]").
var ginkgoNode = regexp.MustCompile(`^\[([A-Za-z ()]+)\]`)

// countCase adds one test case to r. A Ginkgo spec ("[It] ...") counts as
// passed, failed or skipped; a suite-level node ("[BeforeSuite]", ...)
// counts only when it failed (a failed BeforeSuite skips the specs, which
// Ginkgo leaves out of the report). Any other test case counts as a spec.
func (r *suiteRun) countCase(c junitCase) {
	m := ginkgoNode.FindStringSubmatch(c.Name)
	spec := m == nil || m[1] == "It"
	f := c.Failure
	if f == nil {
		f = c.Error
	}
	switch {
	case f != nil:
		r.Failed++
		msg := f.Message
		if strings.TrimSpace(msg) == "" {
			msg = f.Text
		}
		r.Failures = append(r.Failures, specFailure{Suite: r.Suite, Spec: c.Name, Message: messageLine(msg)})
	case !spec:
	case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
		r.Skipped++
	default:
		r.Passed++
	}
}

// gomegaPreamble matches the lines Gomega puts before an error's text
// ("Unexpected error:", "<*fmt.wrapError | 0xc000123>: ").
var gomegaPreamble = regexp.MustCompile(`^(Unexpected error:|<[^>]*>:)$`)

// messageLine is the line of a failure message that says what failed: the
// first one that is not Gomega's preamble.
func messageLine(msg string) string {
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" && !gomegaPreamble.MatchString(l) {
			return l
		}
	}
	return ""
}

// readJUnit reads one JUnit file and returns its suites, each with the
// kernel it ran on: the property hoplab.kernel.series, else the file's
// name (junit-5.10.xml, 5.10.xml), else its directory's (junit-5.10/,
// 5.10/); a leading "junit-" is dropped from either name. Errors name the
// file.
func readJUnit(path string) ([]suiteRun, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: not JUnit XML: %w", path, err)
	}
	suites := doc.Suites
	switch doc.XMLName.Local {
	case "testsuites":
	case "testsuite":
		suites = []junitSuite{{Name: doc.Name, Props: doc.Props, Cases: doc.Cases}}
	default:
		return nil, fmt.Errorf("%s: not a JUnit report (root element <%s>, want <testsuites> or <testsuite>)", path, doc.XMLName.Local)
	}
	fileKernel, from := kernelOfPath(path)
	var out []suiteRun
	for _, s := range suites {
		r := suiteRun{File: path, Suite: s.Name, Kernel: s.prop(propKernelSeries), Release: s.prop(propKernelRelease), KernelFrom: "property"}
		if r.Suite == "" {
			r.Suite = filepath.Base(s.Package)
		}
		if r.Kernel == "" {
			r.Kernel, r.KernelFrom = fileKernel, from
		}
		for _, c := range s.Cases {
			r.countCase(c)
		}
		for i := range r.Failures {
			r.Failures[i].Kernel = r.Kernel
		}
		out = append(out, r)
	}
	return out, nil
}

// kernelOfPath names the kernel of a JUnit file without the property:
// its name without ".xml" and a leading "junit-", unless that leaves
// nothing or "junit" (junit.xml), else its directory's name likewise.
func kernelOfPath(path string) (kernel, from string) {
	trim := func(s string) string { return strings.TrimPrefix(strings.TrimPrefix(s, "junit-"), "junit_") }
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if k := trim(base); k != "" && k != "junit" && k != "report" {
		return k, "file name"
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return trim(filepath.Base(filepath.Dir(abs))), "directory"
}

// junitFiles expands the command line: a file is read as it is; a
// directory gives every junit*.xml file below it, in path order. A path
// named twice, or a file in a directory also named, is read once.
func junitFiles(args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		key := p
		if abs, err := filepath.Abs(p); err == nil {
			key = abs
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil || !st.IsDir() {
			add(a) // readJUnit reports a missing file
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if !d.IsDir() && strings.HasPrefix(name, "junit") && strings.HasSuffix(name, ".xml") {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no junit*.xml file in it", a)
		}
		slices.Sort(found)
		for _, p := range found {
			add(p)
		}
	}
	return out, nil
}
