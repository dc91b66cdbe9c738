package datapath

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
)

// EnvObjects names a directory whose lxc_bpfel.o, netdev_bpfel.o and
// overlay_bpfel.o Load
// uses instead of the objects compiled into the package: a datapath built
// locally (`clang` with the flags of gen.go) can be tried, and `make
// mutants` runs the tests on each mutated object without rebuilding them.
const EnvObjects = "HOPLAB_DATAPATH_OBJECTS"

// loadObject returns the spec of object name ("lxc"), from $HOPLAB_DATAPATH_OBJECTS
// when set, else the compiled-in one.
func loadObject(name string, builtin func() (*ebpf.CollectionSpec, error)) (*ebpf.CollectionSpec, error) {
	dir := os.Getenv(EnvObjects)
	if dir == "" {
		return builtin()
	}
	path := filepath.Join(dir, name+"_bpfel.o")
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvObjects, err)
	}
	return spec, nil
}

// Options configure Load.
type Options struct {
	// PinPath is a directory on bpffs where the maps are pinned by name and
	// reused by later loads. Empty means no pinning.
	PinPath string
	// Logger receives load messages; nil means slog.Default().
	Logger *slog.Logger
	// CTEntries overrides the size of the connection-tracking table
	// (default 262,144 entries, about 32 MiB preallocated); small VMs may
	// want less.
	CTEntries uint32
	// VerifierStats asks the verifier for its statistics (a full log on
	// kernels before 5.2, which have no statistics-only level), kept for
	// [Datapath.VerifierStats]. It makes loading slower. The programs of
	// bpf_sock ([Datapath.AttachSocketLB]) are verified too, and released.
	VerifierStats bool
	// TunnelIfIndex, when not zero, turns tunnel mode on at load: the
	// ifindex of the node's collect-metadata VXLAN device (see
	// [Datapath.SetTunnelDevice]). Zero leaves the mode the config map has
	// (direct routing in a new one).
	TunnelIfIndex int
}

// resize applies the size options to a collection spec.
func (o Options) resize(spec *ebpf.CollectionSpec) {
	if o.CTEntries > 0 {
		if m, ok := spec.Maps["hoplab_ct4_global"]; ok {
			m.MaxEntries = o.CTEntries
		}
	}
}

// Datapath is the loaded datapath: its five programs, the tail-call
// stages, and typed access to every map. Close releases all of it (pinned
// maps stay pinned).
type Datapath struct {
	// FromContainer is attached at tc ingress of a pod's lxc device.
	FromContainer *ebpf.Program
	// ToContainer is only tail-called (through the policy program array).
	ToContainer *ebpf.Program
	// FromNetdev is attached at tc ingress of the uplink (bond0).
	FromNetdev *ebpf.Program
	// ToNetdev is attached at tc egress of the uplink (bond0).
	ToNetdev *ebpf.Program
	// FromOverlay is attached at tc ingress of the VXLAN device in tunnel
	// mode (see [Datapath.AttachOverlay]).
	FromOverlay *ebpf.Program

	// Services is the service map (VIP, port, proto, slot).
	Services *ServiceMap
	// Backends is the backend map (id -> address, port).
	Backends *BackendMap
	// RevNAT is the reverse-NAT map (rev-NAT id -> VIP, port).
	RevNAT *RevNATMap
	// CT is the connection-tracking table.
	CT *CTMap
	// NAT is the SNAT table of NodePort connections.
	NAT *NATMap
	// IPCache maps prefixes to security identities.
	IPCache *IPCache
	// Endpoints are the local pods.
	Endpoints *EndpointMap
	// Policy is the policy map of all endpoints.
	Policy *PolicyMap
	// Metrics are the per-CPU (reason, direction) counters.
	Metrics *Metrics

	events      *ebpf.Map
	eventsMuted *ebpf.Map
	policyProgs *ebpf.Map
	log         *slog.Logger
	stats       []ProgramStats
	lxc         lxcObjects
	netdev      netdevObjects
	overlay     overlayObjects
}

// Load loads the BPF objects (bpf_lxc, bpf_netdev, bpf_overlay) into the
// kernel, sharing one set of maps, and wires the tail-call stages.
func Load(opts Options) (*Datapath, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	lxcSpec, err := loadObject("lxc", loadLxc)
	if err != nil {
		return nil, fmt.Errorf("load bpf_lxc spec: %w", err)
	}
	useCoarseClock(log, lxcSpec)
	opts.resize(lxcSpec)
	collOpts := &ebpf.CollectionOptions{}
	if opts.VerifierStats {
		collOpts.Programs.LogLevel = statsLogLevel()
	}
	if opts.PinPath != "" {
		for _, m := range lxcSpec.Maps {
			m.Pinning = ebpf.PinByName
		}
		collOpts.Maps.PinPath = opts.PinPath
	}
	d := &Datapath{log: log}
	if err := lxcSpec.LoadAndAssign(&d.lxc, collOpts); err != nil {
		return nil, newLoadError("bpf_lxc", err)
	}

	m := d.lxc.lxcMaps
	shared := map[string]*ebpf.Map{
		"hoplab_calls_lxc":       m.HoplabCallsLxc,
		"hoplab_config":          m.HoplabConfig,
		"hoplab_ct4_global":      m.HoplabCt4Global,
		"hoplab_events":          m.HoplabEvents,
		"hoplab_events_muted":    m.HoplabEventsMuted,
		"hoplab_ipcache":         m.HoplabIpcache,
		"hoplab_lb4_backends":    m.HoplabLb4Backends,
		"hoplab_lb4_reverse_nat": m.HoplabLb4ReverseNat,
		"hoplab_lb4_services":    m.HoplabLb4Services,
		"hoplab_lxc":             m.HoplabLxc,
		"hoplab_lxc_ifindex":     m.HoplabLxcIfindex,
		"hoplab_metrics":         m.HoplabMetrics,
		"hoplab_policy":          m.HoplabPolicy,
		"hoplab_policy_progs":    m.HoplabPolicyProgs,
	}
	shared["hoplab_snat_v4_external"] = m.HoplabSnatV4External
	netdevSpec, err := loadShared(log, opts, "netdev", "bpf_netdev", loadNetdev, shared, collOpts, &d.netdev)
	if err != nil {
		d.lxc.Close()
		return nil, err
	}
	overlaySpec, err := loadShared(log, opts, "overlay", "bpf_overlay", loadOverlay, shared, collOpts, &d.overlay)
	if err != nil {
		d.netdev.Close()
		d.lxc.Close()
		return nil, err
	}

	if err := m.HoplabCallsLxc.Put(uint32(CallIPv4EgressPolicy), d.lxc.TailIpv4EgressPolicy); err != nil {
		d.Close()
		return nil, fmt.Errorf("register tail call %v: %w", CallIPv4EgressPolicy, err)
	}

	if opts.VerifierStats {
		d.collectStats("bpf_lxc", lxcSpec, d.Programs())
		d.collectStats("bpf_netdev", netdevSpec, d.Programs())
		d.collectStats("bpf_overlay", overlaySpec, d.Programs())
		if err := d.collectSockStats(collOpts.Programs); err != nil {
			d.Close()
			return nil, err
		}
	}
	d.FromContainer = d.lxc.HoplabFromContainer
	d.ToContainer = d.lxc.HoplabToContainer
	d.FromNetdev = d.netdev.HoplabFromNetdev
	d.ToNetdev = d.netdev.HoplabToNetdev
	d.FromOverlay = d.overlay.HoplabFromOverlay
	d.CT = &CTMap{m: m.HoplabCt4Global}
	d.Backends = &BackendMap{m: m.HoplabLb4Backends, ct: d.CT}
	d.RevNAT = &RevNATMap{m: m.HoplabLb4ReverseNat}
	d.Services = &ServiceMap{m: m.HoplabLb4Services, backends: d.Backends, revNAT: d.RevNAT}
	d.NAT = &NATMap{m: m.HoplabSnatV4External}
	d.IPCache = &IPCache{m: m.HoplabIpcache}
	d.Endpoints = &EndpointMap{m: m.HoplabLxc, byIfindex: m.HoplabLxcIfindex, podCIDR: d.PodCIDR}
	d.Policy = &PolicyMap{m: m.HoplabPolicy}
	d.Metrics = &Metrics{m: m.HoplabMetrics}
	d.events = m.HoplabEvents
	d.eventsMuted = m.HoplabEventsMuted
	d.policyProgs = m.HoplabPolicyProgs
	if opts.TunnelIfIndex != 0 {
		if err := d.SetTunnelDevice(opts.TunnelIfIndex); err != nil {
			d.Close()
			return nil, err
		}
	}
	log.Debug("datapath loaded", "pin", opts.PinPath, "tunnel-ifindex", opts.TunnelIfIndex)
	return d, nil
}

// loadShared loads the object name ("netdev", C file object) into objs with
// the lxc object's maps in place of its own (shared, by map name) and
// returns its spec.
func loadShared(log *slog.Logger, opts Options, name, object string, builtin func() (*ebpf.CollectionSpec, error),
	shared map[string]*ebpf.Map, collOpts *ebpf.CollectionOptions, objs any) (*ebpf.CollectionSpec, error) {
	spec, err := loadObject(name, builtin)
	if err != nil {
		return nil, fmt.Errorf("load %s spec: %w", object, err)
	}
	useCoarseClock(log, spec)
	opts.resize(spec)
	repl := map[string]*ebpf.Map{}
	for n, m := range shared {
		if _, ok := spec.Maps[n]; ok {
			repl[n] = m
		}
	}
	if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: repl, Programs: collOpts.Programs}); err != nil {
		return nil, newLoadError(object, err)
	}
	return spec, nil
}

// useCoarseClock rewrites calls of bpf_ktime_get_ns (4.1) into
// bpf_ktime_get_coarse_ns (5.11) when the kernel has the latter: CT
// lifetimes are seconds, and the precise clock costs tens of nanoseconds
// per packet. Both take no argument and return nanoseconds of
// CLOCK_MONOTONIC.
func useCoarseClock(log *slog.Logger, spec *ebpf.CollectionSpec) {
	if err := features.HaveProgramHelper(ebpf.SchedCLS, asm.FnKtimeGetCoarseNs); err != nil {
		log.Debug("keeping bpf_ktime_get_ns", "reason", err)
		return
	}
	for _, p := range spec.Programs {
		for i := range p.Instructions {
			ins := &p.Instructions[i]
			if ins.IsBuiltinCall() && ins.Constant == int64(asm.FnKtimeGetNs) {
				ins.Constant = int64(asm.FnKtimeGetCoarseNs)
			}
		}
	}
}

// Programs returns every program by its C function name, tail-call stages
// included.
func (d *Datapath) Programs() map[string]*ebpf.Program {
	return map[string]*ebpf.Program{
		"hoplab_from_container":   d.lxc.HoplabFromContainer,
		"tail_ipv4_egress_policy": d.lxc.TailIpv4EgressPolicy,
		"hoplab_to_container":     d.lxc.HoplabToContainer,
		"hoplab_from_netdev":      d.netdev.HoplabFromNetdev,
		"hoplab_to_netdev":        d.netdev.HoplabToNetdev,
		"hoplab_from_overlay":     d.overlay.HoplabFromOverlay,
	}
}

// RegisterEndpoint installs to-container as endpoint id's policy program,
// the target of local delivery and of from-netdev.
func (d *Datapath) RegisterEndpoint(id uint16) error {
	if err := d.policyProgs.Put(uint32(id), d.ToContainer); err != nil {
		return fmt.Errorf("register endpoint %d: %w", id, err)
	}
	return nil
}

// UnregisterEndpoint removes endpoint id's policy program; packets for it
// then drop with "Missed tail call".
func (d *Datapath) UnregisterEndpoint(id uint16) error {
	if err := d.policyProgs.Delete(uint32(id)); err != nil {
		return fmt.Errorf("unregister endpoint %d: %w", id, err)
	}
	return nil
}

// Close releases programs and maps.
func (d *Datapath) Close() error {
	return errors.Join(d.overlay.Close(), d.netdev.Close(), d.lxc.Close())
}
