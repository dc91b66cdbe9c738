// Command hoplab-agent is the init process of hoplab's VMs: the guest agent
// of package agent, built static and placed at /init in the initramfs.
//
// Roles (pods, datapath, BGP) register their methods by being imported
// here for their side effects.
package main

import (
	"log"

	"github.com/hoplab/hoplab/vmtest/agent"
	// The node and router roles (pods, datapath, BGP).
	_ "github.com/hoplab/hoplab/vmtest/agent/roles"
)

func main() {
	if err := agent.Main(); err != nil {
		log.Fatal(err)
	}
}
