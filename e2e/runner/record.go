package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/onsi/ginkgo/v2/reporters"
)

// KernelFile is the artifact naming the kernel a run used.
const KernelFile = "kernel.json"

// KernelRecord is the content of [KernelFile], and the JUnit properties
// hoplab.kernel.series, .release and .image of every suite.
type KernelRecord struct {
	// Series is the kernel's series ("4.19").
	Series string `json:"series"`
	// Release is the release the guests reported (uname -r), or the
	// prepared one when no VM booted.
	Release string `json:"release"`
	// Image is the kernel image booted.
	Image string `json:"image"`
}

// recordKernel writes kernel.json into dir and annotates dir's JUnit report
// (when there is one): the kernel in the properties of each suite, and the
// tail of the verifier log in every failure that names one.
func recordKernel(dir string, r Result) error {
	rec := KernelRecord{Series: r.Series, Release: r.Kernel(), Image: r.Image}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, KernelFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	return annotateJUnit(filepath.Join(dir, JUnitReport), rec)
}

// annotateJUnit adds rec as properties to every test suite of the JUnit
// report at path, and to every failure that names a verifier log (a
// datapath load failure) the log's last lines; a missing report is not an
// error.
func annotateJUnit(path string, rec KernelRecord) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	var suites reporters.JUnitTestSuites
	if err := xml.Unmarshal(b, &suites); err != nil {
		return fmt.Errorf("junit %s: %w", path, err)
	}
	for i := range suites.TestSuites {
		props := &suites.TestSuites[i].Properties
		props.Properties = append(props.Properties,
			reporters.JUnitProperty{Name: "hoplab.kernel.series", Value: rec.Series},
			reporters.JUnitProperty{Name: "hoplab.kernel.release", Value: rec.Release},
			reporters.JUnitProperty{Name: "hoplab.kernel.image", Value: rec.Image})
		for j := range suites.TestSuites[i].TestCases {
			c := &suites.TestSuites[i].TestCases[j]
			if f := c.Failure; f != nil {
				f.Message, f.Description = withVerifierTails(f.Message), withVerifierTails(f.Description)
			}
			if e := c.Error; e != nil {
				e.Message, e.Description = withVerifierTails(e.Message), withVerifierTails(e.Description)
			}
		}
	}
	out, err := xml.MarshalIndent(suites, "", "  ")
	if err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(out, '\n')...), 0o644)
}
