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
	"os"

	"github.com/cilium/ebpf"

	"github.com/hoplab/hoplab/datapath/compat"
)

func main() {
	kernel := flag.String("kernel", compat.MinKernel, fmt.Sprintf("kernel profile to check against %v", compat.Kernels()))
	verbose := flag.Bool("v", false, "print each program's instruction count")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: bpfcompat [-kernel VERSION] [-v] FILE.o...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	k, err := compat.Lookup(*kernel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bpfcompat:", err)
		os.Exit(2)
	}

	status := 0
	for _, path := range flag.Args() {
		spec, err := ebpf.LoadCollectionSpec(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bpfcompat: %s: %v\n", path, err)
			os.Exit(2)
		}
		if *verbose {
			for name, p := range spec.Programs {
				fmt.Printf("%s: program %s: %d instructions\n", path, name, compat.InsnCount(p))
			}
		}
		vs := compat.Check(spec, k)
		for _, v := range vs {
			fmt.Printf("%s: %s\n", path, v)
		}
		if len(vs) > 0 {
			status = 1
		}
	}
	if status != 0 {
		fmt.Fprintf(os.Stderr, "bpfcompat: objects break kernel %s\n", k)
	}
	os.Exit(status)
}
