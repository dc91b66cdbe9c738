package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// KVMProbeTimeout bounds the boot probe that decides whether KVM works.
const KVMProbeTimeout = 15 * time.Second

var accelCache struct {
	sync.Mutex
	done   bool
	accel  Accel
	reason string
}

// ProbeAccel decides, once per process, which accelerator VMs use: KVM
// when /dev/kvm is usable, a hardware KVM module (kvm_intel or kvm_amd) is
// loaded and a short probe boot of o's kernel and initramfs reaches the
// agent; else TCG. Some hypervisors offer /dev/kvm but cannot boot stock
// kernels, hence the boot probe. HOPLAB_ACCEL overrides the probe. It
// returns the verdict and why.
func ProbeAccel(ctx context.Context, o *Options) (Accel, string) {
	if v := os.Getenv(EnvAccel); v != "" {
		return Accel(v), EnvAccel + " set"
	}
	accelCache.Lock()
	defer accelCache.Unlock()
	if accelCache.done {
		return accelCache.accel, accelCache.reason
	}
	accelCache.accel, accelCache.reason = probeAccel(ctx, o)
	// A cancelled probe says nothing about KVM: probe again next time.
	accelCache.done = ctx.Err() == nil
	o.Logger.Info("accelerator", "accel", accelCache.accel, "reason", accelCache.reason)
	return accelCache.accel, accelCache.reason
}

// KVMModule reports whether this machine offers hardware KVM: /dev/kvm
// opens for reading and writing and kvm_intel or kvm_amd is loaded. It
// returns the module, or why not. Only a boot proves that KVM works
// ([ProbeAccel]).
func KVMModule() (module, whyNot string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Sprintf("no usable /dev/kvm (%v)", err)
	}
	f.Close()
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if _, err := os.Stat("/sys/module/" + m); err == nil {
			return m, ""
		}
	}
	return "", "/dev/kvm is not backed by kvm_intel or kvm_amd (a paravirtual KVM that cannot boot stock kernels)"
}

func probeAccel(ctx context.Context, o *Options) (Accel, string) {
	module, whyNot := KVMModule()
	if module == "" {
		return AccelTCG, whyNot
	}
	if o.Initramfs == "" {
		return AccelKVM, module + " loaded (no initramfs to probe-boot with)"
	}
	vm, err := Start(ctx, WithName("kvm-probe"), WithAccel(AccelKVM), WithKernel(o.Kernel), WithInitramfs(o.Initramfs),
		WithQEMU(o.QEMU), WithMemory(128), WithReadyTimeout(KVMProbeTimeout), WithLogger(o.Logger))
	if err != nil {
		var ve *VMError
		if errors.As(err, &ve) {
			err = ve.Err
			os.RemoveAll(ve.Dir) // a failed probe is a verdict, not an artifact
		}
		return AccelTCG, fmt.Sprintf("probe boot under KVM failed: %v", err)
	}
	d := vm.BootTime()
	vm.Close()
	return AccelKVM, fmt.Sprintf("%s loaded and a probe boot reached the agent in %v", module, d.Round(time.Millisecond))
}
