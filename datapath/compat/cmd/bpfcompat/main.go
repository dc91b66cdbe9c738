// Command bpfcompat checks compiled BPF objects against an older kernel
// without loading them, printing one line per violation:
//
//	go run ./datapath/compat/cmd/bpfcompat [-kernel 4.19] [-v] FILE.o...
//
// It exits 1 when any object has a violation, 2 on usage or read errors.
// With -v it also prints each program's instruction count.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/hoplab/hoplab/datapath/compat"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("bpfcompat", flag.ContinueOnError)
	flags.SetOutput(stderr)
	kernel := flags.String("kernel", compat.MinKernel, fmt.Sprintf("kernel profile to check against %v", compat.Kernels()))
	verbose := flags.Bool("v", false, "print each program's instruction count")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: bpfcompat [-kernel VERSION] [-v] FILE.o...\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return 2
	}
	k, err := compat.Lookup(*kernel)
	if err != nil {
		fmt.Fprintln(stderr, "bpfcompat:", err)
		return 2
	}

	status := 0
	for _, path := range flags.Args() {
		spec, err := ebpf.LoadCollectionSpec(path)
		if err != nil {
			fmt.Fprintf(stderr, "bpfcompat: %v\n", err)
			return 2
		}
		if *verbose {
			names := make([]string, 0, len(spec.Programs))
			for name := range spec.Programs {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				probed := ""
				if feature, ok := compat.Probed(spec.Programs[name]); ok {
					probed = " (loaded behind a probe for " + feature + ")"
				}
				fmt.Fprintf(stdout, "%s: program %s: %d instructions%s\n", path, name, compat.InsnCount(spec.Programs[name]), probed)
			}
		}
		vs := compat.Check(spec, k)
		for _, v := range vs {
			fmt.Fprintf(stdout, "%s: %s\n", path, v)
		}
		if len(vs) > 0 {
			status = 1
		}
	}
	if status != 0 {
		fmt.Fprintf(stderr, "bpfcompat: objects break kernel %s\n", k)
	}
	return status
}
