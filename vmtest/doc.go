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
//     vmtest/guest) opens; the harness speaks package vmtest/control on it.
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
// node's two NICs to the ToR through wires of package vmtest/link (capture
// to pcapng, injection, cuts, counters), or straight to each other with
// [FabricSpec.Direct]. It boots all VMs in parallel and configures bonds,
// addresses, routes and forwarding through the agents.
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
// (make e2e); the unit tests (argument rendering, links, protocol) have no
// tag and run in make test.
package vmtest
