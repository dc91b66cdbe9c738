package topologies

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestShippedTopologiesLoadCleanly(t *testing.T) {
	want := []string{"host", "l7", "multi-backend", "no-backend", "nodeport", "pod-to-service", "policy", "same-node", "socket-lb", "tunnel"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			top, err := Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			if top.Name != name {
				t.Errorf("name %q in file %s.yaml", top.Name, name)
			}
			for _, w := range top.Warnings {
				t.Errorf("shipped topology has a warning: %s", w)
			}
			// The file on disk is the embedded one.
			disk, err := Load(name + ".yaml")
			if err != nil {
				t.Fatal(err)
			}
			if len(disk.Pods) != len(top.Pods) {
				t.Error("disk and embedded differ")
			}
		})
	}
}

// tunnel is pod-to-service in tunnel mode, and nothing else differs.
func TestTunnelIsPodToServiceTunnelled(t *testing.T) {
	ref, err := os.ReadFile("pod-to-service.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tun := mustBuiltin(t, "tunnel")
	want, err := Parse("tunnel.yaml", ref)
	if err != nil {
		t.Fatal(err)
	}
	if tun.Mode != Tunnel || want.Mode != DirectRouting {
		t.Fatalf("modes %q, %q", tun.Mode, want.Mode)
	}
	shape := func(top *Topology) string {
		s := fmt.Sprintf("%s|%s %d|", top.Kernel, top.Router.Name, top.Router.ASN)
		for _, n := range top.Nodes {
			s += fmt.Sprintf("%s %d %s %v|", n.Name, n.ASN, n.PodCIDR, n.Uplink)
		}
		for _, p := range top.Pods {
			s += fmt.Sprintf("%s %s %s %s %v %d|", p.Name, p.Node, p.IP, p.Labels, p.Listen, p.Identity)
		}
		for _, v := range top.Services {
			s += fmt.Sprintf("%s %s:%d %s %v|", v.Name, v.VIP, v.Port, v.Protocol, v.Backends)
		}
		return s + fmt.Sprint(len(top.Policies))
	}
	if a, b := shape(tun), shape(want); a != b {
		t.Errorf("tunnel differs from pod-to-service beyond its mode:\n%s\n%s", a, b)
	}
}

func TestPodToServiceIsTheReferenceJourney(t *testing.T) {
	top := mustBuiltin(t, "pod-to-service")
	a := netip.MustParseAddr
	got := fmt.Sprintf("%s %s %s %s:%d|", top.Name, top.Kernel, top.Mode, top.Router.Name, top.Router.ASN)
	for _, n := range top.Nodes {
		got += fmt.Sprintf("%s:%d:%s:%s:%s:%s|", n.Name, n.ASN, n.PodCIDR, n.Uplink.Address, n.Uplink.Gateway, n.Uplink.Bond)
	}
	for _, p := range top.Pods {
		got += fmt.Sprintf("%s@%s:%s:%s:%v|", p.Name, p.Node, p.IP, p.Labels, p.Listen)
	}
	s := top.Services[0]
	got += fmt.Sprintf("%s %s:%d/%s -> %v", s.Name, s.VIP, s.Port, s.Protocol, s.Backends[0])
	want := "pod-to-service 6.1 direct-routing tor:65000|" +
		"node1:65001:10.1.1.0/24:10.255.1.11/24:10.255.1.1:balance-xor|" +
		"node2:65002:10.1.2.0/24:10.255.2.12/24:10.255.2.1:balance-xor|" +
		"pod1@node1:10.1.1.10:app=frontend:[]|pod4@node2:10.1.2.40:app=backend:[tcp/8080 tcp/9999]|" +
		"backend 10.224.1.1:80/tcp -> pod4:8080"
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	if top.ServiceAt(a("10.224.1.1"), 80, TCP) != s || top.PodByIP(a("10.1.2.40")) != top.Pod("pod4") || len(top.PodsOn("node2")) != 1 {
		t.Error("lookups")
	}
}

func TestOpen(t *testing.T) {
	if top, err := Open("same-node"); err != nil || top.Name != "same-node" {
		t.Fatalf("Open(name): %v", err)
	}
	path := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(path, mutate(nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if top, err := Open(path); err != nil || top.File != path {
		t.Fatalf("Open(path): %v", err)
	}
	if _, err := Open("nope"); !errors.Is(err, ErrNoBuiltin) {
		t.Errorf("Open(nope): %v", err)
	}
	if _, err := Open("/does/not/exist.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing path): %v", err)
	}
	if _, err := Builtin("../topologies/policy"); !errors.Is(err, ErrNoBuiltin) {
		t.Errorf("Builtin with a path: %v", err)
	}
}
