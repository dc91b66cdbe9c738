package vmtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/wire"
)

// UplinkNICs is the number of NICs between each node and the ToR; a node
// bonds them into [NodeBond].
const UplinkNICs = 2

// NodeBond is the name of a node's uplink bond.
const NodeBond = "bond0"

// FabricSpec describes a ToR router and the nodes bonded to it. It is plain
// data, independent of the topology file format.
type FabricSpec struct {
	// Router is the ToR's VM name; default "tor".
	Router string
	// Nodes are the nodes, each wired to the ToR with [UplinkNICs] NICs.
	Nodes []FabricNode
	// Direct wires NICs straight to each other: faster, but no capture,
	// injection, counters or harness-side cuts (QMP set_link still works).
	Direct bool
	// NoCapture turns off the pcapng file per link.
	NoCapture bool
	// NoConfigure leaves the guests' networks unconfigured: only the VMs
	// boot (for roles that configure the network themselves).
	NoConfigure bool
	// VMOptions apply to every VM (kernel, initramfs, memory, ...).
	VMOptions []Option
	// Dir is the run directory; empty creates one the fabric owns.
	Dir string
	// Logger is the harness logger.
	Logger *slog.Logger
	// ConsoleLine, when set, receives every console line of every VM.
	ConsoleLine func(vm, line string)
}

// FabricNode is a node of a [FabricSpec].
type FabricNode struct {
	// Name is the node's VM name (short: it names files and sockets).
	Name string
	// Address is the node's uplink address on its bond (10.255.1.11/24).
	Address netip.Prefix
	// Gateway is the ToR's address facing the node (10.255.1.1), which
	// the ToR puts on its bond toward the node, with Address's prefix
	// length.
	Gateway netip.Addr
	// Bond is the bonding mode on both ends; default balance-xor.
	Bond control.BondMode
	// NICMACs, when set, are the MACs of the node's [UplinkNICs] NICs
	// (bond0 takes the first); default [MAC](i+1, j) for the i-th node.
	NICMACs []net.HardwareAddr
	// TorNICMACs, when set, are the MACs of the ToR's NICs facing the node
	// (its bond toward the node takes the first); default [MAC](0, k) with
	// k the NIC's index among the ToR's NICs.
	TorNICMACs []net.HardwareAddr
	// Options apply to this node's VM after [FabricSpec.VMOptions].
	Options []Option
}

// Fabric is a running ToR with its nodes and the links between them.
type Fabric struct {
	spec   FabricSpec
	dir    string
	ownDir bool
	keep   atomic.Bool
	log    *slog.Logger

	router *VM
	nodes  []*VM
	byName map[string]*VM
	wires  map[string]*wire.Wire // by LinkName
	wireL  []*wire.Wire

	// BootTime is the wall time from the start of StartFabric until every
	// VM was ready and configured.
	BootTime time.Duration

	closeOnce sync.Once
}

// LinkName names the wire carrying the i-th uplink of node ("node1-0").
func LinkName(node string, i int) string { return fmt.Sprintf("%s-%d", node, i) }

// MAC returns the deterministic MAC of NIC nic of the vm-th VM of a fabric
// (the router is VM 0): locally administered 02:68:6c:VM:00:NIC.
func MAC(vm, nic int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x68, 0x6c, byte(vm), 0x00, byte(nic)}
}

// TorBond is the name of the ToR's bond toward the i-th node (0-based):
// the node's name when it is a valid interface name, else bondN (N=i+1).
func TorBond(node string, i int) string {
	ok := len(node) > 0 && len(node) <= 15 && node != NodeBond
	for _, r := range node {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			ok = false
		}
	}
	if ok {
		return node
	}
	return fmt.Sprintf("bond%d", i+1)
}

// NodeMAC is the MAC of the j-th NIC of the i-th node: FabricNode.NICMACs
// when given, else [MAC](i+1, j).
func (s FabricSpec) NodeMAC(i, j int) net.HardwareAddr {
	if m := s.Nodes[i].NICMACs; m != nil {
		return m[j]
	}
	return MAC(i+1, j)
}

// RouterMAC is the MAC of the ToR's NIC on the j-th uplink of the i-th
// node: FabricNode.TorNICMACs when given, else [MAC](0, k) with k the NIC's
// index among the ToR's NICs.
func (s FabricSpec) RouterMAC(i, j int) net.HardwareAddr {
	if m := s.Nodes[i].TorNICMACs; m != nil {
		return m[j]
	}
	return MAC(0, torNIC(i, j))
}

// uplinkNICs returns the node's and the ToR's NIC on the j-th uplink of
// the i-th node, named and addressed but not yet wired.
func (s FabricSpec) uplinkNICs(i, j int) (node, tor *NIC) {
	node = &NIC{Name: fmt.Sprintf("eth%d", j), MAC: s.NodeMAC(i, j)}
	tor = &NIC{Name: fmt.Sprintf("eth%d", torNIC(i, j)), MAC: s.RouterMAC(i, j)}
	return node, tor
}

// torNIC is the index, among the ToR's NICs, of its NIC on the j-th
// uplink of the i-th node.
func torNIC(i, j int) int { return i*UplinkNICs + j }

func (s *FabricSpec) validate() error {
	if s.Router == "" {
		s.Router = "tor"
	}
	seen := map[string]bool{s.Router: true}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.Name == "" || seen[n.Name] {
			return fmt.Errorf("fabric: node %d: empty or duplicate name %q", i, n.Name)
		}
		seen[n.Name] = true
		if n.Bond == "" {
			n.Bond = control.BondBalanceXOR
		}
		for _, m := range [][]net.HardwareAddr{n.NICMACs, n.TorNICMACs} {
			if m != nil && len(m) != UplinkNICs {
				return fmt.Errorf("fabric: node %s: %d MACs for %d NICs", n.Name, len(m), UplinkNICs)
			}
			for _, a := range m {
				if len(a) != 6 {
					return fmt.Errorf("fabric: node %s: MAC %q is not 6 bytes", n.Name, a)
				}
			}
		}
		if !s.NoConfigure && (!n.Address.IsValid() || !n.Gateway.IsValid()) {
			return fmt.Errorf("fabric: node %s: needs an uplink address and gateway", n.Name)
		}
	}
	if len(s.Nodes) > 250 {
		return errors.New("fabric: at most 250 nodes")
	}
	return nil
}

// StartFabric boots the ToR and all nodes in parallel, wires two NICs per
// node to the ToR, and (unless NoConfigure) configures bond0 with the
// node's address and a default route via its gateway on every node, and a
// bond per node with the gateway address plus IP forwarding on the ToR. On
// failure everything is torn down and the run directory is kept, unless ctx
// ended: an interrupted start leaves nothing.
func StartFabric(ctx context.Context, spec FabricSpec) (*Fabric, error) {
	start := time.Now()
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fabric: %w", err)
	}
	f := &Fabric{spec: spec, dir: spec.Dir, log: spec.Logger, byName: map[string]*VM{}, wires: map[string]*wire.Wire{}}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.dir == "" {
		d, err := NewRunDir()
		if err != nil {
			return nil, err
		}
		f.dir, f.ownDir = d, true
	}
	register(f)
	fail := func(err error) (*Fabric, error) {
		if ctx.Err() != nil {
			// Interrupted: nothing is worth keeping.
			f.Close()
			return nil, err
		}
		f.keep.Store(true)
		f.Close()
		return nil, fmt.Errorf("%w (artifacts in %s)", err, f.dir)
	}

	var torNICs []*NIC
	nodeNICs := make([][]*NIC, len(spec.Nodes))
	for i, n := range spec.Nodes {
		for j := range UplinkNICs {
			name := LinkName(n.Name, j)
			nodeEnd, err := wire.NewEndpoint(fmt.Sprintf("%s:eth%d", n.Name, j), f.dir, name+"n")
			if err != nil {
				return fail(err)
			}
			torEnd, err := wire.NewEndpoint(fmt.Sprintf("%s:eth%d", spec.Router, torNIC(i, j)), f.dir, name+"t")
			if err != nil {
				return fail(err)
			}
			nn, tn := spec.uplinkNICs(i, j)
			if spec.Direct {
				np, tp := wire.Direct(nodeEnd.QEMUPath, torEnd.QEMUPath)
				nn.Local, nn.Remote, tn.Local, tn.Remote = np.Local, np.Remote, tp.Local, tp.Remote
			} else {
				var opts []wire.Option
				if !spec.NoCapture {
					opts = append(opts, wire.WithPcap(filepath.Join(f.dir, name+".pcapng")))
				}
				opts = append(opts, wire.WithLogger(f.log))
				w, err := wire.New(name, nodeEnd, torEnd, opts...)
				if err != nil {
					return fail(err)
				}
				f.wires[name] = w
				f.wireL = append(f.wireL, w)
				np, tp := nodeEnd.Paths(), torEnd.Paths()
				nn.Local, nn.Remote, tn.Local, tn.Remote = np.Local, np.Remote, tp.Local, tp.Remote
			}
			nodeNICs[i] = append(nodeNICs[i], nn)
			torNICs = append(torNICs, tn)
		}
	}

	type booted struct {
		i   int // -1 for the router
		vm  *VM
		err error
	}
	ch := make(chan booted)
	boot := func(i int, name string, nics []*NIC, extra []Option) {
		opts := []Option{WithLogger(f.log)}
		opts = append(opts, spec.VMOptions...)
		opts = append(opts, extra...)
		opts = append(opts, WithName(name), WithDir(f.dir))
		if spec.ConsoleLine != nil {
			opts = append(opts, WithConsoleLine(func(l string) { spec.ConsoleLine(name, l) }))
		}
		for _, n := range nics {
			opts = append(opts, WithNIC(n))
		}
		vm, err := Start(ctx, opts...)
		ch <- booted{i, vm, err}
	}
	go boot(-1, spec.Router, torNICs, nil)
	for i, n := range spec.Nodes {
		go boot(i, n.Name, nodeNICs[i], n.Options)
	}
	f.nodes = make([]*VM, len(spec.Nodes))
	var errs []error
	for range len(spec.Nodes) + 1 {
		b := <-ch
		if b.err != nil {
			errs = append(errs, b.err)
			continue
		}
		if b.i < 0 {
			f.router = b.vm
		} else {
			f.nodes[b.i] = b.vm
		}
		f.byName[b.vm.Name()] = b.vm
	}
	if len(errs) > 0 {
		return fail(fmt.Errorf("fabric boot: %w", errors.Join(errs...)))
	}
	f.log.Info("fabric booted", "vms", len(spec.Nodes)+1, "wall", time.Since(start).Round(time.Millisecond))
	if !spec.NoConfigure {
		if err := f.configure(ctx); err != nil {
			return fail(err)
		}
	}
	f.BootTime = time.Since(start)
	f.log.Info("fabric ready", "wall", f.BootTime.Round(time.Millisecond), "dir", f.dir)
	return f, nil
}

// RouterConfig is the configuration StartFabric applies on the ToR.
func (s FabricSpec) RouterConfig() control.Configure {
	c := control.Configure{
		Hostname: s.Router,
		Sysctls: map[string]string{
			"net.ipv4.ip_forward":             "1",
			"net.ipv4.conf.all.rp_filter":     "0",
			"net.ipv4.conf.default.rp_filter": "0",
		},
	}
	for i, n := range s.Nodes {
		bond := control.Bond{Name: TorBond(n.Name, i), Mode: n.Bond}
		for j := range UplinkNICs {
			k := torNIC(i, j)
			name := fmt.Sprintf("eth%d", k)
			c.Links = append(c.Links, control.Link{MAC: s.RouterMAC(i, j).String(), Name: name})
			bond.Slaves = append(bond.Slaves, name)
		}
		c.Bonds = append(c.Bonds, bond)
		gw := netip.PrefixFrom(n.Gateway, n.Address.Bits())
		c.Addresses = append(c.Addresses, control.Address{Link: bond.Name, CIDR: gw.String()})
		c.WaitCarrier = append(c.WaitCarrier, bond.Name)
	}
	return c
}

// NodeConfig is the configuration StartFabric applies on the i-th node.
func (s FabricSpec) NodeConfig(i int) control.Configure {
	n := s.Nodes[i]
	c := control.Configure{
		Hostname: n.Name,
		Sysctls:  map[string]string{"net.ipv4.conf.all.rp_filter": "0"},
	}
	bond := control.Bond{Name: NodeBond, Mode: n.Bond}
	for j := range UplinkNICs {
		name := fmt.Sprintf("eth%d", j)
		c.Links = append(c.Links, control.Link{MAC: s.NodeMAC(i, j).String(), Name: name})
		bond.Slaves = append(bond.Slaves, name)
	}
	c.Bonds = []control.Bond{bond}
	c.Addresses = []control.Address{{Link: NodeBond, CIDR: n.Address.String()}}
	c.Routes = []control.Route{{Dst: "default", Gateway: n.Gateway.String(), Link: NodeBond}}
	c.WaitCarrier = []string{NodeBond}
	return c
}

func (f *Fabric) configure(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(f.nodes)+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f.router.Configure(ctx, f.spec.RouterConfig()); err != nil {
			errs[0] = f.router.named(err)
		}
	}()
	for i, vm := range f.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := vm.Configure(ctx, f.spec.NodeConfig(i)); err != nil {
				errs[i+1] = vm.named(err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Dir is the run directory holding console logs, agent messages and pcaps.
func (f *Fabric) Dir() string { return f.dir }

// Router is the ToR's VM.
func (f *Fabric) Router() *VM { return f.router }

// Nodes are the nodes' VMs in spec order.
func (f *Fabric) Nodes() []*VM { return f.nodes }

// VM returns the VM called name, or nil.
func (f *Fabric) VM(name string) *VM { return f.byName[name] }

// VMs returns the router and the nodes.
func (f *Fabric) VMs() []*VM { return append([]*VM{f.router}, f.nodes...) }

// Spec is the fabric's spec with defaults filled in.
func (f *Fabric) Spec() FabricSpec { return f.spec }

// Link returns the wire of the j-th uplink of node (side A is the node,
// side B the ToR), or nil with Direct wiring.
func (f *Fabric) Link(node string, j int) *wire.Wire { return f.wires[LinkName(node, j)] }

// Links returns all wires in order (node by node, uplink by uplink).
func (f *Fabric) Links() []*wire.Wire { return f.wireL }

func (f *Fabric) nodeIndex(node string) (int, error) {
	for i, n := range f.spec.Nodes {
		if n.Name == node {
			return i, nil
		}
	}
	return 0, fmt.Errorf("fabric: no node %q", node)
}

// SetLink cuts (up false) or restores the j-th uplink of node at both ends:
// QMP set_link on the node's and the ToR's NIC, so that both bonds see the
// carrier change, and the harness wire drops or forwards frames.
func (f *Fabric) SetLink(ctx context.Context, node string, j int, up bool) error {
	i, err := f.nodeIndex(node)
	if err != nil {
		return err
	}
	if j < 0 || j >= UplinkNICs {
		return fmt.Errorf("fabric: node %s has no uplink %d", node, j)
	}
	if w := f.Link(node, j); w != nil {
		if up {
			w.Restore()
		} else {
			w.Cut()
		}
	}
	var wg sync.WaitGroup
	var e1, e2 error
	wg.Add(2)
	go func() { defer wg.Done(); e1 = f.nodes[i].SetLink(ctx, j, up) }()
	go func() { defer wg.Done(); e2 = f.router.SetLink(ctx, torNIC(i, j), up) }()
	wg.Wait()
	return errors.Join(e1, e2)
}

// KeepArtifacts keeps the run directory when the fabric is closed.
func (f *Fabric) KeepArtifacts() { f.keep.Store(true) }

// Kept reports whether Close keeps the run directory: on request, or
// because a VM's QEMU ended by itself (see VM.Close).
func (f *Fabric) Kept() bool {
	if f.keep.Load() || KeepArtifacts() {
		return true
	}
	for _, vm := range f.byName {
		if vm.keep.Load() {
			return true
		}
	}
	return false
}

func (f *Fabric) kill() {
	for _, vm := range f.byName {
		vm.kill()
	}
	if f.ownDir && !f.Kept() {
		os.RemoveAll(f.dir)
	}
}

// Close stops every VM and wire, removes the sockets, and removes the run
// directory it created unless artifacts are kept.
func (f *Fabric) Close() error {
	var err error
	f.closeOnce.Do(func() {
		var wg sync.WaitGroup
		for _, vm := range f.byName {
			wg.Add(1)
			go func() { defer wg.Done(); vm.Close() }()
		}
		wg.Wait()
		var errs []error
		for _, w := range f.wireL {
			errs = append(errs, w.Close())
		}
		unregister(f)
		if f.dir == "" {
			return
		}
		socks, _ := filepath.Glob(filepath.Join(f.dir, "*.[qh]"))
		for _, s := range socks {
			os.Remove(s)
		}
		if f.ownDir {
			if f.Kept() {
				f.log.Info("fabric artifacts kept", "dir", f.dir)
			} else {
				errs = append(errs, os.RemoveAll(f.dir))
			}
		}
		err = errors.Join(errs...)
	})
	return err
}

// InjectToNode delivers frame to node on its first uplink, as if the ToR
// had sent it (an active-backup bond only takes frames on its active
// slave, the first one unless it failed over).
func (f *Fabric) InjectToNode(node string, frame []byte) error {
	w := f.Link(node, 0)
	if w == nil {
		return fmt.Errorf("fabric: no harness wire to %s (direct wiring?)", node)
	}
	return w.Inject(wire.A, frame)
}

// InjectToRouter delivers frame to the ToR on node's first uplink, as if
// node had sent it.
func (f *Fabric) InjectToRouter(node string, frame []byte) error {
	w := f.Link(node, 0)
	if w == nil {
		return fmt.Errorf("fabric: no harness wire to %s (direct wiring?)", node)
	}
	return w.Inject(wire.B, frame)
}

// Tap calls fn for every frame on every wire (see wire.Wire.Tap); the
// returned function removes the taps.
func (f *Fabric) Tap(fn func(w *wire.Wire, fr wire.Frame)) (remove func()) {
	var removes []func()
	for _, w := range f.wireL {
		removes = append(removes, w.Tap(func(fr wire.Frame) { fn(w, fr) }))
	}
	return func() {
		for _, r := range removes {
			r()
		}
	}
}
