// Command hoplab replays packet captures through a Cilium-style eBPF
// datapath running in QEMU VMs and shows what happens to every packet at
// every hop; it also dumps the datapath's state, traces policies without
// booting, manages the kernel cache and holds a topology up for
// interactive use. Run `hoplab --help` for the commands.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
