package vmtest

import (
	"context"
	"fmt"
	"os"

	"github.com/hoplab/hoplab/vmtest/initramfs"
	"github.com/hoplab/hoplab/vmtest/kernels"
)

// BootSpec selects what a VM boots: a catalogue kernel and an initramfs
// with the agent and the kernel's modules.
type BootSpec struct {
	// Series is the catalogue series ("6.1"); empty means the default.
	Series string
	// Flavour is "cloud" or "generic"; empty means the default.
	Flavour string
	// ExtraModules are loaded in addition to the kernels package's
	// DefaultModules.
	ExtraModules []string
	// AgentPackage is the agent's main package; default
	// initramfs.AgentPackage.
	AgentPackage string
	// Files adds files to the initramfs (guest path → host path).
	Files map[string]string
	// ModuleParams gives modules parameters (module name → "key=value ...").
	ModuleParams map[string]string
}

// Boot is a kernel and an initramfs ready to boot.
type Boot struct {
	// Kernel is the kernel, from the catalogue or HOPLAB_KERNEL.
	Kernel *kernels.Kernel
	// Initramfs is the initramfs path.
	Initramfs string
}

// PrepareBoot fetches the kernel (or takes HOPLAB_KERNEL), builds the agent
// and the initramfs (or takes HOPLAB_INITRAMFS); all are cached, so later
// calls are quick. Its errors start with "prepare boot: ".
func PrepareBoot(ctx context.Context, spec BootSpec) (*Boot, error) {
	k, ok, err := kernels.FromEnv()
	if err != nil {
		return nil, fmt.Errorf("prepare boot: %w", err)
	}
	if !ok {
		k, err = kernels.Fetch(ctx, spec.Series, spec.Flavour, kernels.Options{ExtraModules: spec.ExtraModules, Quiet: true})
		if err != nil {
			return nil, fmt.Errorf("prepare boot: %w", err)
		}
	}
	b := &Boot{Kernel: k, Initramfs: os.Getenv(EnvInitramfs)}
	if b.Initramfs != "" {
		return b, nil
	}
	pkg := spec.AgentPackage
	if pkg == "" {
		pkg = initramfs.AgentPackage
	}
	agent, err := initramfs.BuildAgent(ctx, pkg)
	if err != nil {
		return nil, fmt.Errorf("prepare boot: %w", err)
	}
	b.Initramfs, err = initramfs.Build(ctx, initramfs.Spec{Init: agent, Modules: k.Modules, Files: spec.Files, ModuleParams: spec.ModuleParams})
	if err != nil {
		return nil, fmt.Errorf("prepare boot: %w", err)
	}
	return b, nil
}

// Options returns the options that boot b.
func (b *Boot) Options() []Option {
	return []Option{WithKernel(b.Kernel.BootImage()), WithInitramfs(b.Initramfs)}
}
