package kernels

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/net/bonding/bonding.ko.xz": "bonding",
		"sch_ingress.ko":    "sch_ingress",
		"virtio-rng.ko.zst": "virtio_rng",
		"sch-ingress":       "sch_ingress",
		"veth":              "veth",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestModuleDependsReadsModinfo(t *testing.T) {
	deps, err := ModuleDepends(fakeModule(t, "bonding", "tls"))
	if err != nil || !reflect.DeepEqual(deps, []string{"tls"}) {
		t.Errorf("got %v, %v", deps, err)
	}
	deps, err = ModuleDepends(fakeModule(t, "virtio_ring"))
	if err != nil || len(deps) != 0 {
		t.Errorf("no deps: got %v, %v", deps, err)
	}
	if _, err := ModuleDepends([]byte("not an elf")); err == nil {
		t.Error("garbage parsed as a module")
	}
}

// fakeDeps is a dependency table for orderModules.
func fakeDeps(table map[string][]string, builtin ...string) depsFunc {
	return func(name string) ([]string, bool, error) {
		for _, b := range builtin {
			if b == name {
				return nil, true, nil
			}
		}
		d, ok := table[name]
		if !ok {
			return nil, false, ErrModuleNotFound
		}
		return d, false, nil
	}
}

// The 6.1 shape: virtio_net needs net_failover (→ failover) and virtio
// (→ virtio_ring); virtio_pci needs the modern/legacy helpers; bonding needs tls.
var deps61 = map[string][]string{
	"virtio_ring": nil, "virtio": {"virtio_ring"}, "failover": nil, "net_failover": {"failover"},
	"virtio_net":            {"net_failover", "virtio", "virtio_ring"},
	"virtio_pci_modern_dev": nil, "virtio_pci_legacy_dev": nil,
	"virtio_pci": {"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio", "virtio_ring"},
	"tls":        nil, "bonding": {"tls"}, "udp_tunnel": nil, "ip6_udp_tunnel": nil,
	"vxlan": {"udp_tunnel", "ip6_udp_tunnel"}, "veth": nil,
}

func TestOrderModulesPutsDependenciesFirst(t *testing.T) {
	load, builtin, err := orderModules([]string{"virtio_net", "virtio_pci", "bonding", "vxlan", "veth"}, fakeDeps(deps61))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"failover", "net_failover", "virtio_ring", "virtio", "virtio_net",
		"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "tls", "bonding",
		"udp_tunnel", "ip6_udp_tunnel", "vxlan", "veth"}
	if !reflect.DeepEqual(load, want) {
		t.Errorf("load order\n got %v\nwant %v", load, want)
	}
	if len(builtin) != 0 {
		t.Errorf("builtin %v", builtin)
	}
	pos := map[string]int{}
	for i, m := range load {
		if _, dup := pos[m]; dup {
			t.Errorf("%s loaded twice", m)
		}
		pos[m] = i
	}
	for m, ds := range deps61 {
		for _, d := range ds {
			if pm, ok := pos[m]; ok && pos[d] > pm {
				t.Errorf("%s loads before its dependency %s", m, d)
			}
		}
	}
}

func TestOrderModulesSkipsBuiltin(t *testing.T) {
	load, builtin, err := orderModules([]string{"virtio_pci", "virtio_console", "veth"},
		fakeDeps(map[string][]string{"veth": nil}, "virtio_pci", "virtio_console"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(load, []string{"veth"}) || !reflect.DeepEqual(builtin, []string{"virtio_pci", "virtio_console"}) {
		t.Errorf("load %v builtin %v", load, builtin)
	}
}

func TestOrderModulesMissingNamesTheChain(t *testing.T) {
	_, _, err := orderModules([]string{"bonding"}, fakeDeps(map[string][]string{"bonding": {"tls"}}))
	if !errors.Is(err, ErrModuleNotFound) || !strings.Contains(err.Error(), "tls (needed by bonding)") {
		t.Errorf("got %v", err)
	}
}

func TestOrderModulesDetectsCycles(t *testing.T) {
	_, _, err := orderModules([]string{"a"}, fakeDeps(map[string][]string{"a": {"b"}, "b": {"a"}}))
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("got %v", err)
	}
}

// writeTree lays out a fake /lib/modules/<release> tree.
func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for p, data := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestModuleTreeFromModinfoWithXZAndBuiltin(t *testing.T) {
	bonding := fakeModule(t, "bonding", "tls")
	dir := writeTree(t, map[string][]byte{
		"kernel/drivers/net/bonding/bonding.ko.xz": xzBytes(t, bonding),
		"kernel/net/tls/tls.ko.xz":                 xzBytes(t, fakeModule(t, "tls")),
		"kernel/drivers/net/veth.ko":               fakeModule(t, "veth"),
		"modules.builtin":                          []byte("kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/char/virtio_console.ko\n"),
	})
	mt, err := openModuleTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	mods, builtin, err := mt.collect([]string{"virtio_pci", "bonding", "veth", "virtio_console"}, out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
		if m.Path != filepath.Join(out, m.Name+".ko") {
			t.Errorf("%s at %s", m.Name, m.Path)
		}
	}
	if !reflect.DeepEqual(names, []string{"tls", "bonding", "veth"}) || !reflect.DeepEqual(builtin, []string{"virtio_console", "virtio_pci"}) {
		t.Errorf("modules %v builtin %v", names, builtin)
	}
	// .ko.xz is stored decompressed.
	if got, _ := os.ReadFile(filepath.Join(out, "bonding.ko")); string(got) != string(bonding) {
		t.Errorf("bonding.ko is not the decompressed module")
	}
	// With modules.builtin present, a module in neither place is an error.
	if _, _, err := mt.collect([]string{"vxlan"}, out); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("missing module: %v", err)
	}
}

func TestModuleTreeUsesModulesDep(t *testing.T) {
	// The modules' .modinfo claims no dependencies; modules.dep wins.
	dir := writeTree(t, map[string][]byte{
		"kernel/drivers/net/vxlan/vxlan.ko": fakeModule(t, "vxlan"),
		"kernel/net/ipv4/udp_tunnel.ko":     fakeModule(t, "udp_tunnel"),
		"kernel/net/ipv6/ip6_udp_tunnel.ko": fakeModule(t, "ip6_udp_tunnel"),
		"modules.dep": []byte("kernel/drivers/net/vxlan/vxlan.ko: kernel/net/ipv4/udp_tunnel.ko kernel/net/ipv6/ip6_udp_tunnel.ko\n" +
			"kernel/net/ipv4/udp_tunnel.ko:\nkernel/net/ipv6/ip6_udp_tunnel.ko:\n"),
		"modules.builtin": nil,
	})
	mt, err := openModuleTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, _, err := mt.collect([]string{"vxlan"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
	}
	if !reflect.DeepEqual(names, []string{"udp_tunnel", "ip6_udp_tunnel", "vxlan"}) {
		t.Errorf("got %v", names)
	}
}

func TestModuleTreeWithoutBuiltinListAssumesBuiltin(t *testing.T) {
	dir := writeTree(t, map[string][]byte{"veth.ko": fakeModule(t, "veth")})
	mt, err := openModuleTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, builtin, err := mt.collect([]string{"veth", "virtio_pci"}, t.TempDir())
	if err != nil || len(mods) != 1 || !reflect.DeepEqual(builtin, []string{"virtio_pci"}) {
		t.Errorf("mods %v builtin %v err %v", mods, builtin, err)
	}
}

func TestCollectModulesFetchesEarlierDependenciesInAnotherPass(t *testing.T) {
	const rel = "6.1.0-90-cloud-amd64"
	base := "./lib/modules/" + rel + "/kernel/"
	files := map[string][]byte{
		base + "net/tls/tls.ko":                     fakeModule(t, "tls"), // streams before bonding wants it
		base + "drivers/net/bonding/bonding.ko.xz":  xzBytes(t, fakeModule(t, "bonding", "tls")),
		base + "drivers/net/veth.ko":                fakeModule(t, "veth"),
		"./lib/modules/" + rel + "/modules.builtin": []byte("kernel/drivers/virtio/virtio_pci.ko\n"),
		"./boot/vmlinuz-" + rel:                     []byte("image"),
	}
	deb := filepath.Join(t.TempDir(), "k.deb")
	os.WriteFile(deb, fakeDeb(t, files, base+"net/tls/tls.ko", base+"drivers/net/bonding/bonding.ko.xz",
		base+"drivers/net/veth.ko", "./lib/modules/"+rel+"/modules.builtin", "./boot/vmlinuz-"+rel), 0o644)
	var others []string
	mods, builtin, assumed, err := collectModules(context.Background(), []string{deb}, rel,
		[]string{"bonding", "virtio_pci"}, t.TempDir(), func(hdr *tar.Header, r io.Reader) error {
			others = append(others, hdr.Name)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
	}
	if !reflect.DeepEqual(names, []string{"tls", "bonding"}) || !reflect.DeepEqual(builtin, []string{"virtio_pci"}) || assumed {
		t.Errorf("modules %v builtin %v assumed %v", names, builtin, assumed)
	}
	// Non-module files reach the other callback once (the extra pass skips it).
	if !reflect.DeepEqual(others, []string{"boot/vmlinuz-" + rel}) {
		t.Errorf("other files %v", others)
	}
	if _, _, _, err := collectModules(context.Background(), []string{deb}, rel, []string{"vxlan"}, t.TempDir(), nil); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("missing module: %v", err)
	}
}
