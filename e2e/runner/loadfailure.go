package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

// TailLines is how many lines of a rejected program's verifier log a
// failure shows.
const TailLines = 12

// fullLog finds the verifier logs a failure names: a node setup that
// failed with a datapath load error ends "(full log: PATH[, PATH...])"
// (vmtest/cluster), the message of datapath.LoadError before it naming
// the program, the kernel and the verifier's last line.
var fullLog = regexp.MustCompile(`\(full log: ([^)]*)\)`)

// logTail is the end of one verifier log a failure names.
type logTail struct {
	Path  string
	Lines []string
}

// verifierTails reads the last TailLines lines of every verifier log msg
// names, once each (Gomega may quote an error twice); logs that cannot be
// read are left out.
func verifierTails(msg string) []logTail {
	var out []logTail
	seen := map[string]bool{}
	for _, m := range fullLog.FindAllStringSubmatch(msg, -1) {
		for _, p := range strings.Split(m[1], ", ") {
			p = strings.TrimSpace(p)
			if !strings.HasPrefix(filepath.Base(p), "verifier-") || seen[p] {
				continue
			}
			seen[p] = true
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			out = append(out, logTail{Path: p, Lines: lines[max(0, len(lines)-TailLines):]})
		}
	}
	return out
}

// withVerifierTails returns msg followed by the tail of every verifier log
// it names, or msg unchanged when it names none.
func withVerifierTails(msg string) string {
	tails := verifierTails(msg)
	if len(tails) == 0 || strings.Contains(msg, "\nverifier log ") {
		return msg
	}
	var b strings.Builder
	b.WriteString(msg)
	for _, t := range tails {
		fmt.Fprintf(&b, "\nverifier log %s, last %d lines:\n", t.Path, len(t.Lines))
		for _, l := range t.Lines {
			b.WriteString("  " + l + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// PrintLoadFailures writes, for every failed spec or suite node whose
// failure names a verifier log (a datapath the kernel refused to load),
// the suite, the node, the failure and the log's last lines.
func PrintLoadFailures(w io.Writer, r Result) {
	for _, rep := range r.Suites {
		for _, s := range rep.SpecReports {
			if !s.State.Is(types.SpecStateFailureStates) || len(verifierTails(s.Failure.Message)) == 0 {
				continue
			}
			name := s.LeafNodeType.String()
			if s.LeafNodeText != "" {
				name += " " + s.FullText()
			}
			fmt.Fprintf(w, "\nload failure in suite %s (%s) on kernel %s:\n%s\n", Row(rep).Suite, name, orDash(r.Kernel()), withVerifierTails(s.Failure.Message))
		}
	}
}
