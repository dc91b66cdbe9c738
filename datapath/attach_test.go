package datapath

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/hoplab/hoplab/internal/netnstest"
)

// attachedFilters lists the cls_bpf filters at hook of ifname.
func attachedFilters(t *testing.T, ifname string, hook Hook) []*netlink.BpfFilter {
	t.Helper()
	link, err := netlink.LinkByName(ifname)
	must(t, err)
	filters, err := netlink.FilterList(link, hook.parent())
	must(t, err)
	var out []*netlink.BpfFilter
	for _, f := range filters {
		if bf, ok := f.(*netlink.BpfFilter); ok {
			out = append(out, bf)
		}
	}
	return out
}

// from-container attaches to an lxc veth and from/to-netdev to an uplink
// through clsact + cls_bpf; attaching again replaces, detaching removes.
func TestAttachDetach(t *testing.T) {
	dp := loadDatapath(t)
	netnstest.EnterNew(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lxctest0"}, PeerName: "uplink0"}
	must(t, netlink.LinkAdd(veth))

	must(t, dp.AttachLXC("lxctest0"))
	must(t, dp.AttachLXC("lxctest0"))
	if fs := attachedFilters(t, "lxctest0", HookIngress); len(fs) != 1 || !fs[0].DirectAction || fs[0].Name == "" {
		t.Fatalf("ingress filters %+v, want one direct-action filter", fs)
	}
	if fs := attachedFilters(t, "lxctest0", HookEgress); len(fs) != 0 {
		t.Fatalf("egress filters on lxc %+v, want none (to-container is tail-called)", fs)
	}
	info, err := dp.FromContainer.Info()
	must(t, err)
	id, _ := info.ID()
	if fs := attachedFilters(t, "lxctest0", HookIngress); fs[0].Id != int(id) {
		t.Errorf("attached program id %d, want from-container %d", fs[0].Id, id)
	}

	must(t, dp.AttachNetdev("uplink0"))
	if len(attachedFilters(t, "uplink0", HookIngress)) != 1 || len(attachedFilters(t, "uplink0", HookEgress)) != 1 {
		t.Fatal("netdev programs not attached at both hooks")
	}
	must(t, DetachNetdev("uplink0"))
	must(t, DetachTC("lxctest0", HookIngress))
	must(t, DetachTC("lxctest0", HookIngress))
	if len(attachedFilters(t, "uplink0", HookIngress))+len(attachedFilters(t, "uplink0", HookEgress))+len(attachedFilters(t, "lxctest0", HookIngress)) != 0 {
		t.Fatal("filters left after detach")
	}
}

// The host kernel has every feature the datapath needs.
func TestProbe(t *testing.T) {
	loadDatapath(t)
	must(t, Probe())
}
