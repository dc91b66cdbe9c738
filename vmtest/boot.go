package vmtest

import (
	"context"
	"fmt"
	"maps"
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
	// initramfs.AgentPackage. It is built with the go command, inside the
	// source tree.
	AgentPackage string
	// AgentBinary, when set, is a ready agent binary used instead of
	// building AgentPackage (the installed hoplab command, which doubles
	// as the agent). A dynamically linked one brings its loader and
	// libraries into the initramfs (initramfs.RuntimeFiles).
	AgentBinary string
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
	agent, files := spec.AgentBinary, spec.Files
	if agent == "" {
		pkg := spec.AgentPackage
		if pkg == "" {
			pkg = initramfs.AgentPackage
		}
		if agent, err = initramfs.BuildAgent(ctx, pkg); err != nil {
			return nil, fmt.Errorf("prepare boot: %w", err)
		}
	} else {
		rt, err := initramfs.RuntimeFiles(agent)
		if err != nil {
			return nil, fmt.Errorf("prepare boot: %w", err)
		}
		files = maps.Clone(files)
		if files == nil {
			files = map[string]string{}
		}
		maps.Copy(files, rt)
	}
	b.Initramfs, err = initramfs.Build(ctx, initramfs.Spec{Init: agent, Modules: k.Modules, Files: files, ModuleParams: spec.ModuleParams})
	if err != nil {
		return nil, fmt.Errorf("prepare boot: %w", err)
	}
	return b, nil
}

// Options returns the options that boot b.
func (b *Boot) Options() []Option {
	return []Option{WithKernel(b.Kernel.BootImage()), WithInitramfs(b.Initramfs)}
}
