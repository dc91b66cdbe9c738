package kernels

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFromPathWithoutModulesAssumesBuiltin(t *testing.T) {
	t.Setenv("HOPLAB_CACHE", t.TempDir())
	img := filepath.Join(t.TempDir(), "bzImage")
	os.WriteFile(img, fakeBzImage(t, "4.19.0-27-amd64", fakeVmlinux(t, true)), 0o644)
	k, err := FromPath(img)
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != "4.19.0-27-amd64" || k.Series != "4.19" || k.Flavour != FlavourUser || k.Image != img {
		t.Errorf("kernel %+v", k)
	}
	if k.Vmlinux == "" || len(k.Modules) != 0 || !reflect.DeepEqual(k.Builtin, wantedModules(nil)) {
		t.Errorf("vmlinux %q modules %v builtin %v", k.Vmlinux, k.Modules, k.Builtin)
	}
}

func TestFromEnvWithModulesDir(t *testing.T) {
	t.Setenv("HOPLAB_CACHE", t.TempDir())
	src := t.TempDir()
	img := filepath.Join(src, "bzImage")
	os.WriteFile(img, fakeBzImage(t, "4.19.0-27-amd64", fakeVmlinux(t, false)), 0o644)
	// A depmod'ed /lib/modules/<release> tree with bonding and veth as
	// modules (bonding compressed) and the rest built in.
	mods := writeTree(t, map[string][]byte{
		"kernel/drivers/net/bonding/bonding.ko.xz": xzBytes(t, fakeModule(t, "bonding")),
		"kernel/drivers/net/veth.ko":               fakeModule(t, "veth"),
		"modules.dep":                              []byte("kernel/drivers/net/bonding/bonding.ko.xz:\nkernel/drivers/net/veth.ko:\n"),
		"modules.builtin": []byte(strings.Join([]string{"virtio_pci", "virtio_net", "virtio_console",
			"sch_ingress", "cls_bpf", "act_bpf", "vxlan"}, ".ko\nkernel/x/") + ".ko\n"),
	})
	t.Setenv(EnvKernel, img+","+mods)
	k, ok, err := FromEnv()
	if err != nil || !ok {
		t.Fatalf("FromEnv: %v, %v", ok, err)
	}
	if k.Vmlinux != "" || k.BootImage() != img {
		t.Errorf("kernel without PVH note got vmlinux %q", k.Vmlinux)
	}
	var names []string
	for _, m := range k.Modules {
		names = append(names, m.Name)
		data, _ := os.ReadFile(m.Path)
		if _, err := ModuleDepends(data); err != nil {
			t.Errorf("%s not stored as a plain module: %v", m.Path, err)
		}
	}
	if !reflect.DeepEqual(names, []string{"bonding", "veth"}) || len(k.Builtin) != 7 {
		t.Errorf("modules %v builtin %v", names, k.Builtin)
	}
	// A modules dir lacking a module its modules.builtin does not list is an error.
	os.Remove(filepath.Join(mods, "kernel/drivers/net/veth.ko"))
	if _, err := FromPath(img + "," + mods); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("missing veth: %v", err)
	}
}

func TestFromEnvUnsetAndBad(t *testing.T) {
	t.Setenv(EnvKernel, "")
	if k, ok, err := FromEnv(); k != nil || ok || err != nil {
		t.Errorf("unset: %v %v %v", k, ok, err)
	}
	t.Setenv(EnvKernel, "/nonexistent/bzImage")
	if _, ok, err := FromEnv(); !ok || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), EnvKernel) {
		t.Errorf("missing image: %v %v", ok, err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not a kernel"), 0o644)
	if _, err := FromPath(junk); err == nil {
		t.Errorf("junk accepted as a kernel")
	}
	if _, err := FromPath(",/lib/modules"); err == nil {
		t.Errorf("empty image accepted")
	}
}

// TestFromPathOfANonKernelLeavesNothing: a file that is not a kernel is
// refused with its path, and the kernel cache gets no folder for it.
func TestFromPathOfANonKernelLeavesNothing(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("HOPLAB_CACHE", cache)
	img := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(img, []byte("not a kernel"), 0o644)
	_, err := FromPath(img)
	if err == nil || !strings.Contains(err.Error(), img+": cannot find the kernel release") {
		t.Fatalf("got %v", err)
	}
	var left []string
	filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if strings.Contains(p, "user") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("the refusal left %v in the kernel cache", left)
	}
}
