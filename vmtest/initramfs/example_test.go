package initramfs_test

import (
	"context"
	"fmt"

	"github.com/hoplab/hoplab/vmtest/initramfs"
	"github.com/hoplab/hoplab/vmtest/kernels"
)

// Example shows how the VM harness gets a kernel and an initramfs to boot:
// a user's kernel from HOPLAB_KERNEL, else the default catalogue kernel,
// with the guest agent as /init and the kernel's modules in load order.
func Example() {
	ctx := context.Background()
	k, ok, err := kernels.FromEnv()
	if err != nil {
		panic(err) // in a test: t.Fatal
	}
	if !ok {
		if k, err = kernels.Fetch(ctx, kernels.DefaultSeries, kernels.DefaultFlavour, kernels.Options{}); err != nil {
			panic(err)
		}
	}
	agent, err := initramfs.BuildAgent(ctx, initramfs.AgentPackage)
	if err != nil {
		panic(err)
	}
	initrd, err := initramfs.Build(ctx, initramfs.Spec{Init: agent, Modules: k.Modules})
	if err != nil {
		panic(err)
	}
	fmt.Println("qemu-system-x86_64 -M q35 -kernel", k.BootImage(), "-initrd", initrd, "-append console=ttyS0")
}
