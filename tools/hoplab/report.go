package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newReportCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Combine test reports of several runs",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newReportMergeCmd(a))
	return cmd
}

func newReportMergeCmd(a *app) *cobra.Command {
	var asJSON, markdown bool
	cmd := &cobra.Command{
		Use:   "merge [--json|--markdown] FILE|DIR...",
		Short: "Merge per-kernel JUnit reports into one suite × kernel table",
		Long: `Merge reads JUnit XML reports, one or more per kernel (make e2e's
junit.xml from each job of a kernel matrix), and prints one table: a row
per suite, a column per kernel, passed/failed/skipped in each cell, then
every failed spec with the first line of its message. It exits with
status 1 when any spec failed.

A directory stands for every junit*.xml file below it. The kernel of a
test suite is its JUnit property hoplab.kernel.series (make e2e writes
it, with hoplab.kernel.release); without it, the file's name without
.xml and a leading "junit-" (junit-5.10.xml), unless that leaves "junit";
else the name of the file's directory, likewise (junit-5.10/junit.xml).

Ginkgo's suite-level nodes ([BeforeSuite], [AfterSuite], ...) count only
when they failed: a failed BeforeSuite, such as a datapath the kernel
refused to load, is one failure of its suite. Any other producer's test
cases count one each.

--markdown prints the table as GitHub-flavoured Markdown (for
$GITHUB_STEP_SUMMARY), --json as {"kernels", "suites", "failures",
"failed"}.`,
		Example: `  hoplab report merge reports/
  hoplab report merge --markdown junit-5.10/junit.xml junit-7.2/junit.xml >> "$GITHUB_STEP_SUMMARY"`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON && markdown {
				return errors.New("report merge: --json or --markdown, not both")
			}
			rep, err := mergeReports(args)
			if err != nil {
				return fmt.Errorf("report merge: %w", err)
			}
			switch {
			case asJSON:
				err = writeJSON(a.stdout, rep)
			case markdown:
				err = writeMergeMarkdown(a.stdout, rep)
			default:
				err = writeMergeText(a.stdout, rep)
			}
			if err != nil {
				return err
			}
			if rep.Failed {
				return fmt.Errorf("report merge: %d spec(s) failed on %d of %d kernel(s)", len(rep.Failures), rep.failedKernels(), len(rep.Kernels))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the table as JSON")
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the table as Markdown (GitHub's job summary)")
	return cmd
}

// mergeReports reads every file args name and merges them.
func mergeReports(args []string) (mergedReport, error) {
	if len(args) == 0 {
		return mergedReport{}, errors.New("name the JUnit files or directories to merge")
	}
	files, err := junitFiles(args)
	if err != nil {
		return mergedReport{}, err
	}
	var runs []suiteRun
	for _, f := range files {
		r, err := readJUnit(f)
		if err != nil {
			return mergedReport{}, err
		}
		runs = append(runs, r...)
	}
	return mergeRuns(runs)
}

// cellText is a cell of the text table: "passed/failed/skipped", "-" when
// the suite did not run on the kernel.
func cellText(c mergedCell) string {
	if !c.Ran {
		return "-"
	}
	return fmt.Sprintf("%d/%d/%d", c.Passed, c.Failed, c.Skipped)
}

// writeMergeText prints the kernels, the table and the failures.
func writeMergeText(w io.Writer, rep mergedReport) error {
	for _, k := range rep.Kernels {
		fmt.Fprintf(w, "kernel %s: %s (%s", k.Name, dash(k.Release), strings.Join(k.Files, ", "))
		if k.From != "property" {
			fmt.Fprintf(w, "; kernel named by the %s", k.From)
		}
		fmt.Fprintln(w, ")")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"SUITE"}
	for _, k := range rep.Kernels {
		head = append(head, k.Name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, s := range rep.Suites {
		row := []string{s.Suite}
		for _, c := range s.Cells {
			row = append(row, cellText(c))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	total := []string{"total"}
	for i := range rep.Kernels {
		total = append(total, cellText(rep.totals(i)))
	}
	fmt.Fprintln(tw, strings.Join(total, "\t"))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(passed/failed/skipped; - did not run)")
	if len(rep.Failures) == 0 {
		_, err := fmt.Fprintf(w, "\nevery spec passed on %d kernel(s)\n", len(rep.Kernels))
		return err
	}
	fmt.Fprintf(w, "\nfailed:\n")
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "  %s  %s  %s\n", f.Kernel, f.Suite, f.Spec)
		if f.Message != "" {
			fmt.Fprintf(w, "      %s\n", f.Message)
		}
	}
	return nil
}

// writeMergeMarkdown prints the same as a Markdown heading, table and
// list.
func writeMergeMarkdown(w io.Writer, rep mergedReport) error {
	var b strings.Builder
	if rep.Failed {
		fmt.Fprintf(&b, "### Kernel matrix: %d spec(s) failed on %d of %d kernel(s)\n\n", len(rep.Failures), rep.failedKernels(), len(rep.Kernels))
	} else {
		fmt.Fprintf(&b, "### Kernel matrix: every spec passed on %d kernel(s)\n\n", len(rep.Kernels))
	}
	b.WriteString("| suite |")
	for _, k := range rep.Kernels {
		fmt.Fprintf(&b, " %s |", mdEscape(k.Name))
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---|", len(rep.Kernels)))
	b.WriteString("\n")
	for _, s := range rep.Suites {
		fmt.Fprintf(&b, "| %s |", mdEscape(s.Suite))
		for _, c := range s.Cells {
			fmt.Fprintf(&b, " %s |", mdCell(c))
		}
		b.WriteString("\n")
	}
	b.WriteString("| **total** |")
	for i := range rep.Kernels {
		fmt.Fprintf(&b, " **%s** |", mdCell(rep.totals(i)))
	}
	b.WriteString("\n\n")
	var rel []string
	for _, k := range rep.Kernels {
		if k.Release != "" {
			rel = append(rel, fmt.Sprintf("%s: `%s`", mdEscape(k.Name), k.Release))
		}
	}
	if len(rel) > 0 {
		fmt.Fprintf(&b, "Kernels: %s\n\n", strings.Join(rel, " · "))
	}
	if len(rep.Failures) > 0 {
		b.WriteString("#### Failed\n\n")
		for _, f := range rep.Failures {
			fmt.Fprintf(&b, "- **%s** %s: %s", mdEscape(f.Kernel), mdEscape(f.Suite), mdEscape(f.Spec))
			if f.Message != "" {
				fmt.Fprintf(&b, "<br>`%s`", strings.ReplaceAll(f.Message, "`", "'"))
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCell is a Markdown cell: "✅ 12 passed", "❌ 1 failed, 11 passed, 1
// skipped", "–" when the suite did not run.
func mdCell(c mergedCell) string {
	if !c.Ran {
		return "–"
	}
	var parts []string
	if c.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", c.Failed))
	}
	parts = append(parts, fmt.Sprintf("%d passed", c.Passed))
	if c.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", c.Skipped))
	}
	mark := "✅"
	if c.Failed > 0 {
		mark = "❌"
	}
	return mark + " " + strings.Join(parts, ", ")
}

// mdEscape keeps a text from breaking a Markdown table or adding markup.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`).Replace(s)
}
