// Package agent is the hoplab agent that runs as /init inside every VM.
//
// [Main] mounts the pseudo file systems, loads the kernel modules the
// initramfs carries (in the order of [ModuleOrderFile]), finds the
// virtio-serial port named [control.PortName], sends the ready event and
// serves requests of the control protocol (package control).
//
// Every agent serves the built-in methods: ping, uname, configure (links,
// bonds, addresses, routes, sysctls through netlink), exec, udp-listen,
// udp-stats, udp-send and poweroff. Roles extend the same agent instead of
// adding a second one: a package registers its methods with [Handle] (from
// an init function, imported by the agent's main package) and sends events
// with [Emit]:
//
//	func init() {
//		agent.Handle("pod-add", agent.Typed(addPod))
//	}
//
// The host calls such a method with control.Client.Call.
package agent
