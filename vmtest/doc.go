// Package vmtest boots QEMU virtual machines with the hoplab agent as
// their init, wires their NICs through links the harness owns, and brings
// up fabrics of a ToR router and bonded nodes.
//
// # One VM
//
// [Start] (or [StartT] in a test) renders the QEMU command line from
// [Options] built with With… functions. Every VM gets
//
//   - the serial console on a socket the harness reads: written to
//     NAME.console.log in the run directory, streamed line by line on request,
//     and quoted (its tail) in every error;
//   - a QMP monitor, driven through github.com/digitalocean/go-qemu (status,
//     set_link, quit), its events drained;
//   - a virtio-serial port named hoplab.ctl that the agent (package
//     vmtest/agent) opens; the harness speaks package vmtest/protocol/control on it.
//
// Start returns once the agent's ready event arrived. A guest that panics
// ends QEMU at once (panic=-1 with -no-reboot); a guest that never gets
// ready fails after the ready timeout; both errors are [*VMError] values
// carrying the console tail. QEMU is started with a parent-death signal, so
// no QEMU outlives the process that started it, and [HandleSignals] tears
// everything down on SIGINT and SIGTERM.
//
// # Accelerator
//
// KVM is used only when /dev/kvm is usable, kvm_intel or kvm_amd is loaded
// and a short probe boot reaches the agent ([ProbeAccel]; the verdict is
// cached per process and logged). Otherwise VMs run under TCG.
//
// # Links and fabrics
//
// NICs are QEMU dgram netdevs on unix sockets. [StartFabric] connects each
// node's two NICs to the ToR through wires of package vmtest/wire (capture
// to pcapng, injection, cuts, counters), or straight to each other with
// [FabricSpec.Direct]. It boots all VMs in parallel and configures bonds,
// addresses, routes and forwarding through the agents. [Fabric.SetLink]
// cuts an uplink at both ends (QMP set_link on both QEMUs plus the wire),
// [Fabric.InjectToNode] and [Fabric.InjectToRouter] inject frames, and
// [Fabric.Tap] watches every wire. Each wire writes LINK.pcapng in the run
// directory, with one pcapng interface per end ("node1:eth0", "tor:eth0").
//
// Another process reaches the agents when the holder of a fabric calls
// [Fabric.ServeControl] (a relay socket per VM, see [DialControl]) and
// [Fabric.WriteState] (fabric.json with the sockets, pids and pcaps):
// that is how `hoplab vm exec` talks to a fabric `hoplab vm up` holds, and
// SIGTERM to the holder's pid is `hoplab vm down`.
//
// # Kernels and initramfs
//
// [PrepareBoot] fetches a catalogue kernel (package vmtest/kernels), builds
// the agent and the initramfs (package vmtest/initramfs), all cached, and
// [Boot.Options] hands them to Start or to [FabricSpec.VMOptions].
//
// # Extending the agent
//
// A role registers guest methods with agent.Handle (package vmtest/agent)
// and the host calls them with [VM.Call]; events the role emits reach
// handlers given with [WithEventHandler] or VM.Agent().OnEvent.
//
// # Environment
//
//	HOPLAB_KERNEL     kernel image to boot (bzImage or vmlinux); a
//	                  ",modules-dir" suffix is for the initramfs builder
//	HOPLAB_INITRAMFS  initramfs to boot (default: built by the caller)
//	HOPLAB_QEMU       QEMU binary (default qemu-system-x86_64)
//	HOPLAB_ACCEL      kvm or tcg: skip the accelerator probe
//	HOPLAB_KEEP       keep run directories (console logs, pcaps, agent
//	                  messages) even when nothing failed
//
// Run directories are $XDG_RUNTIME_DIR/hoplab/hl-XXXX when that path is
// short, else /tmp/hl-XXXX, so that unix socket paths stay under 108 bytes.
//
// # Tests
//
// Tests that boot VMs carry the build tag vm and run with
//
//	go test -tags vm ./vmtest/...
//
// (make e2e). HOPLAB_TEST_SERIES and HOPLAB_TEST_FLAVOURS (comma lists)
// narrow the per-kernel boot test; HOPLAB_SERIES picks the kernel of the
// fabric and failure tests. The unit tests (argument rendering, links, protocol) have no
// tag and run in make test.
package vmtest
