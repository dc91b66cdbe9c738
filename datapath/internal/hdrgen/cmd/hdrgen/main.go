// Command hdrgen writes the Go constants of the datapath's C headers (see
// package hdrgen). Usage: hdrgen -pkg datapath -o reasons_gen.go HEADER...
package main

import (
	"flag"
	"log"
	"os"

	"github.com/hoplab/hoplab/datapath/internal/hdrgen"
)

func main() {
	pkg := flag.String("pkg", "datapath", "Go package name")
	out := flag.String("o", "reasons_gen.go", "output file")
	flag.Parse()
	src, err := hdrgen.Generate(*pkg, ".", flag.Args()...)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
