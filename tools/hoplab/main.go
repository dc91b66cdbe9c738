// Command hoplab replays packet captures through a Cilium-style eBPF
// datapath running in QEMU VMs and shows what happens to every packet at
// every hop; it also dumps the datapath's state, traces policies without
// booting, manages the kernel cache and holds a topology up for
// interactive use. Run `hoplab --help` for the commands.
//
// The binary is also its own guest agent: the initramfs of every VM it
// boots gets a copy of the running executable as /init, and run as
// process 1 it serves the agent's control protocol instead of the CLI. So
// an installed hoplab needs no source tree and no go command.
package main

import (
	"fmt"
	"os"

	"github.com/hoplab/hoplab/vmtest/agent"
	// The node and router roles (pods, datapath, BGP) the agent serves.
	_ "github.com/hoplab/hoplab/vmtest/agent/roles"
)

func main() {
	if os.Getpid() == 1 {
		if err := agent.Main(); err != nil {
			fmt.Fprintln(os.Stderr, "hoplab agent:", err)
			os.Exit(1)
		}
		return
	}
	if exe, err := os.Executable(); err == nil {
		selfAgent = exe
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// selfAgent is the running executable when it is the hoplab command (not a
// test binary): VMs boot it as their agent. Empty builds the agent from
// the source tree, as the tests do.
var selfAgent string
