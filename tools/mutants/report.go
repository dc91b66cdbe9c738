package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// writeTable writes one row per mutant: status, place, change, killer.
func writeTable(w io.Writer, jobs []job, outcomes []Outcome) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\n#\tAREA\tSTATUS\tFILE:LINE\tOPERATOR\tCHANGE\tKILLED BY / REASON\tTIME")
	for i, j := range jobs {
		o := outcomes[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s:%d\t%s\t%s -> %s\t%s\t%v\n", j.id, j.area.Name, o.Status, j.m.File, j.m.Line, j.m.Operator,
			oneLine(j.m.Original), oneLine(j.m.Replacement), o.By, o.Took.Round(100*time.Millisecond))
	}
	tw.Flush()
}

// Score counts one area's outcomes.
type Score struct {
	Killed, Survived, Equivalent, Stillborn int
}

// Percent is killed over killed and survived (equivalent and stillborn
// mutants do not count); 100 when nothing counts.
func (s Score) Percent() float64 {
	if s.Killed+s.Survived == 0 {
		return 100
	}
	return 100 * float64(s.Killed) / float64(s.Killed+s.Survived)
}

func scoreOf(area string, jobs []job, outcomes []Outcome) Score {
	var s Score
	for i, j := range jobs {
		if j.area.Name != area {
			continue
		}
		switch outcomes[i].Status {
		case Killed:
			s.Killed++
		case Survived:
			s.Survived++
		case Equivalent:
			s.Equivalent++
		case Stillborn:
			s.Stillborn++
		}
	}
	return s
}

// writeScores writes the score table and returns the areas below target.
func writeScores(w io.Writer, areas []Area, jobs []job, outcomes []Outcome, minBPF, minGo float64) []string {
	var fails []string
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nAREA\tKILLED\tSURVIVED\tEQUIVALENT\tSTILLBORN\tSCORE\tTARGET")
	for _, a := range areas {
		s := scoreOf(a.Name, jobs, outcomes)
		target := minGo
		if a.Package == "" {
			target = minBPF
		}
		res := "ok"
		if s.Percent() < target {
			res = "BELOW"
			fails = append(fails, fmt.Sprintf("%s scores %.1f%%, below %.0f%%", a.Name, s.Percent(), target))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1f%%\t%.0f%% %s\n", a.Name, s.Killed, s.Survived, s.Equivalent, s.Stillborn, s.Percent(), target, res)
	}
	tw.Flush()
	return fails
}
