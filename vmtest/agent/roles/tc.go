package roles

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TCList lists the BPF programs attached at the clsact ingress and egress
// hooks of every device of the node's namespace, ordered by device, then
// ingress before egress. Pods' namespaces are not looked at.
func (n *Node) TCList(context.Context) ([]nodeapi.TCFilterRow, error) {
	return tcList(n.nl)
}

// tcList lists the BPF filters of every link h sees.
func tcList(h *netlink.Handle) ([]nodeapi.TCFilterRow, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Name < links[j].Attrs().Name })
	rows := []nodeapi.TCFilterRow{}
	for _, l := range links {
		for _, hook := range []struct {
			name   string
			parent uint32
		}{{nodeapi.TCIngress, netlink.HANDLE_MIN_INGRESS}, {nodeapi.TCEgress, netlink.HANDLE_MIN_EGRESS}} {
			fs, err := h.FilterList(l, hook.parent)
			if err != nil {
				// A device without clsact has no such parent.
				if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
					continue
				}
				return nil, fmt.Errorf("%s %s: %w", l.Attrs().Name, hook.name, err)
			}
			for _, f := range fs {
				bf, ok := f.(*netlink.BpfFilter)
				if !ok {
					continue
				}
				rows = append(rows, tcRow(l.Attrs().Name, hook.name, bf))
			}
		}
	}
	return rows, nil
}

// tcRow describes one cls_bpf filter. The program's name is the one
// hoplab gave the filter (datapath.AttachTC), else the program info's
// (completed from BTF when the kernel cut it); so is its tag.
func tcRow(dev, hook string, f *netlink.BpfFilter) nodeapi.TCFilterRow {
	r := nodeapi.TCFilterRow{Device: dev, Hook: hook, ID: uint32(f.Id), Tag: f.Tag}
	name := f.Name
	if f.Id != 0 && (name == "" || r.Tag == "") {
		if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(f.Id)); err == nil {
			if info, err := p.Info(); err == nil {
				if name == "" {
					name = info.Name
				}
				if r.Tag == "" {
					r.Tag = info.Tag
				}
			}
			_ = p.Close()
		}
	}
	r.Program = programName(name)
	return r
}

// programName turns a hoplab program's C name into the journey vocabulary
// ("hoplab_from_container" → "from-container"); other names are kept.
func programName(name string) string {
	rest, ok := strings.CutPrefix(name, "hoplab_")
	if !ok {
		return name
	}
	return strings.ReplaceAll(rest, "_", "-")
}
