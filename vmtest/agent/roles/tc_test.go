package roles

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestTCList: on both nodes of the reference topology and on the two-pod
// node of same-node, tc-list
// shows from-container at every lxc's ingress and nothing at its egress
// (to-container is tail-called), from-netdev and to-netdev at bond0's
// ingress and egress, and nothing else; ids and tags are the loaded
// programs'.
func TestTCList(t *testing.T) {
	for _, c := range []struct{ topology, node string }{
		{"pod-to-service", "node1"}, {"pod-to-service", "node2"}, {"same-node", "node1"},
	} {
		t.Run(c.topology+"/"+c.node, func(t *testing.T) {
			node := c.node
			n, top, _ := testNode(t, c.topology+".yaml", topologyText(t, c.topology), node)
			rows, err := n.TCList(context.Background())
			must(t, err)
			for _, r := range rows {
				t.Logf("%s %s %s id %d tag %s", r.Device, r.Hook, r.Program, r.ID, r.Tag)
			}
			want := map[[3]string]*ebpf.Program{
				{"bond0", nodeapi.TCIngress, "from-netdev"}: n.dp.FromNetdev,
				{"bond0", nodeapi.TCEgress, "to-netdev"}:    n.dp.ToNetdev,
			}
			for _, p := range top.PodsOn(node) {
				want[[3]string{p.LXCName, nodeapi.TCIngress, "from-container"}] = n.dp.FromContainer
			}
			tag := regexp.MustCompile(`^[0-9a-f]{16}$`)
			seen := map[[3]string]bool{}
			for _, r := range rows {
				k := [3]string{r.Device, r.Hook, r.Program}
				prog, ok := want[k]
				if !ok {
					t.Errorf("unexpected program %+v", r)
					continue
				}
				if seen[k] {
					t.Errorf("%s %s: %s listed twice", r.Device, r.Hook, r.Program)
				}
				seen[k] = true
				info, err := prog.Info()
				must(t, err)
				id, _ := info.ID()
				if r.ID != uint32(id) || r.Tag != info.Tag || !tag.MatchString(r.Tag) {
					t.Errorf("%s %s %s: id %d tag %q, want the loaded program's id %d tag %q", r.Device, r.Hook, r.Program, r.ID, r.Tag, id, info.Tag)
				}
			}
			for k := range want {
				if !seen[k] {
					t.Errorf("%s %s: no %s", k[0], k[1], k[2])
				}
			}
			for _, p := range top.PodsOn(node) {
				if i := slices.IndexFunc(rows, func(r nodeapi.TCFilterRow) bool {
					return r.Device == p.LXCName && r.Hook == nodeapi.TCEgress
				}); i >= 0 {
					t.Errorf("%s egress: %+v, want nothing (to-container is tail-called)", p.LXCName, rows[i])
				}
			}
		})
	}
}

func TestProgramName(t *testing.T) {
	for in, want := range map[string]string{
		"hoplab_from_container": "from-container",
		"hoplab_to_netdev":      "to-netdev",
		"hoplab_rst_filter":     "rst-filter",
		"bpf_lxc.o:[tc]":        "bpf_lxc.o:[tc]",
		"":                      "",
	} {
		if got := programName(in); got != want {
			t.Errorf("programName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTCRowFromProgramInfo: a filter without a name or tag (attached by
// another tool) is described from the program's info: its name and
// tag.
func TestTCRowFromProgramInfo(t *testing.T) {
	n, _, _ := testNode(t, "same-node.yaml", topologyText(t, "same-node"), "node1")
	info, err := n.dp.FromContainer.Info()
	must(t, err)
	id, ok := info.ID()
	if !ok {
		t.Fatal("no program id")
	}
	r := tcRow("lxc0", nodeapi.TCIngress, &netlink.BpfFilter{Id: int(id)})
	want := nodeapi.TCFilterRow{Device: "lxc0", Hook: nodeapi.TCIngress, Program: "from-container", ID: uint32(id), Tag: info.Tag}
	if r != want {
		t.Errorf("row %+v, want %+v", r, want)
	}
}
