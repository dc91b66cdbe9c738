package datapath

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// SockHook is the socket call a translation happened in.
type SockHook uint8

// Socket LB hooks (SOCK_HOOK_* of lib/sock.h).
const (
	SockConnect4 SockHook = 1
	SockSendmsg4 SockHook = 2
)

// String returns "connect4" or "sendmsg4".
func (h SockHook) String() string {
	switch h {
	case SockConnect4:
		return "connect4"
	case SockSendmsg4:
		return "sendmsg4"
	}
	return fmt.Sprintf("hook(%d)", uint8(h))
}

// Hooks of a cgroup that [Datapath.AttachSocketLB] attaches programs to,
// as [SocketLB.Hooks] reports them (the programs' ELF sections).
const (
	CgroupConnect4  = "cgroup/connect4"
	CgroupSendmsg4  = "cgroup/sendmsg4"
	CgroupRecvmsg4  = "cgroup/recvmsg4"
	CgroupUDPEgress = "cgroup_skb/egress"
)

// sockXlateNoBackend is SOCK_XLATE_F_NO_BACKEND.
const sockXlateNoBackend = 1

// SockTranslation is the last translation the socket LB made for one
// socket, as hoplab_sock4_xlate records it.
type SockTranslation struct {
	// Cookie is the socket's cookie (getsockopt SO_COOKIE, [SocketCookie]).
	Cookie uint64
	// Proto is TCP or UDP.
	Proto Proto
	// Hook is the call that was translated.
	Hook SockHook
	// Service is the VIP and port the socket asked for.
	Service netip.AddrPort
	// Backend is where it was sent instead; invalid when NoBackend.
	Backend netip.AddrPort
	// BackendID is the backend's id in the backend map, RevNAT the
	// service's rev-NAT index.
	BackendID uint32
	RevNAT    uint16
	// NoBackend says the service had no backend: the call failed with
	// EPERM (4.19 cannot choose the errno).
	NoBackend bool
	// Time is when it happened, on CLOCK_MONOTONIC (bpf_ktime_get_ns,
	// comparable with clock_gettime(CLOCK_MONOTONIC)).
	Time time.Duration
}

// String returns "cookie 1234 TCP connect4 10.224.1.1:80 -> 10.1.2.40:8080",
// or "... -> no backend (rejected)".
func (t SockTranslation) String() string {
	to := t.Backend.String()
	if t.NoBackend {
		to = "no backend (rejected)"
	}
	return fmt.Sprintf("cookie %d %v %v %v -> %s", t.Cookie, t.Proto, t.Hook, t.Service, to)
}

func sockTranslationFrom(cookie uint64, v *sockSock4Xlate) SockTranslation {
	t := SockTranslation{
		Cookie:    cookie,
		Proto:     Proto(v.Proto),
		Hook:      SockHook(v.Hook),
		Service:   netip.AddrPortFrom(addrFrom32(v.Vip), port16(v.Vport)),
		BackendID: v.BackendId,
		RevNAT:    v.RevNatIndex,
		NoBackend: v.Flags&sockXlateNoBackend != 0,
		Time:      time.Duration(v.Ktime),
	}
	if !t.NoBackend {
		t.Backend = netip.AddrPortFrom(addrFrom32(v.Backend), port16(v.BackendPort))
	}
	return t
}

// SocketLBOptions configure [Datapath.AttachSocketLBWith].
type SocketLBOptions struct {
	// NoRecvmsg4 attaches the fallback of kernels without cgroup/recvmsg4
	// even where the kernel has it: the tc path reverse-NATs the UDP
	// replies instead. For tests, and to compare both.
	NoRecvmsg4 bool
}

// SocketLB is socket-level load balancing attached to one cgroup v2
// directory: connect() and sendmsg() of its processes' sockets to a
// Service VIP:port go to a backend (Cilium's socket LB), with the
// services and backends of the tc path. Close detaches it.
type SocketLB struct {
	cgroup string
	xlate  *ebpf.Map
	progs  []*ebpf.Program
	links  []link.Link
	hooks  []string
}

// sockCore are the programs attached everywhere.
type sockCore struct {
	Connect4 *ebpf.Program `ebpf:"hoplab_sock4_connect"`
	Sendmsg4 *ebpf.Program `ebpf:"hoplab_sock4_sendmsg"`
}

// sockRecvmsg is the reverse translation where the kernel has recvmsg4.
type sockRecvmsg struct {
	Recvmsg4 *ebpf.Program `ebpf:"hoplab_sock4_recvmsg"`
}

// sockUDPEgress is the fallback where it does not.
type sockUDPEgress struct {
	Egress *ebpf.Program `ebpf:"hoplab_sock4_udp_egress"`
}

// AttachSocketLB loads bpf_sock with the datapath's maps and attaches it
// to the cgroup v2 directory cgroupPath (e.g. /sys/fs/cgroup, or a pod's
// cgroup): cgroup/connect4 and cgroup/sendmsg4 translate a Service
// VIP:port into a backend, picked at random like the tc path picks one,
// and record the translation per socket ([SocketLB.Translation]). For UDP
// replies to appear to come from the VIP, it attaches cgroup/recvmsg4
// where the kernel has it ([HaveSockRecvmsg4]: 5.2, 4.19.57); elsewhere
// it attaches cgroup_skb/egress, which hands the tc path the flows
// sendmsg4 translated, and from-container's CT entry reverse-NATs their
// replies on the way into the pod (so only for pods, whose traffic
// crosses from-container and to-container). The fallback leaves a
// connected UDP socket's replies alone (the socket would drop them from
// the VIP), so recvfrom reports the backend there, as getpeername does
// on every kernel.
//
// The programs act on sockets created by processes in the cgroup or its
// descendants. Several SocketLBs of one datapath share its maps.
func (d *Datapath) AttachSocketLB(cgroupPath string) (*SocketLB, error) {
	return d.AttachSocketLBWith(cgroupPath, SocketLBOptions{})
}

// AttachSocketLBWith is [Datapath.AttachSocketLB] with options.
func (d *Datapath) AttachSocketLBWith(cgroupPath string, opts SocketLBOptions) (*SocketLB, error) {
	s := &SocketLB{cgroup: cgroupPath, xlate: d.lxc.HoplabSock4Xlate}
	if err := s.attach(d, opts); err != nil {
		return nil, errors.Join(fmt.Errorf("attach socket LB to %s: %w", cgroupPath, err), s.Close())
	}
	d.log.Debug("socket LB attached", "cgroup", cgroupPath, "hooks", s.hooks)
	return s, nil
}

// loadSock loads the programs objs names from bpf_sock with the
// datapath's maps, and returns the object's spec.
func (d *Datapath) loadSock(objs any, progOpts ebpf.ProgramOptions) (*ebpf.CollectionSpec, error) {
	m := d.lxc.lxcMaps
	maps := map[string]*ebpf.Map{
		"hoplab_lb4_services":    m.HoplabLb4Services,
		"hoplab_lb4_backends":    m.HoplabLb4Backends,
		"hoplab_sock4_xlate":     m.HoplabSock4Xlate,
		"hoplab_sock4_reverse":   m.HoplabSock4Reverse,
		"hoplab_sock4_udp_flows": m.HoplabSock4UdpFlows,
		"hoplab_ct4_global":      m.HoplabCt4Global,
	}
	spec, err := loadObject("sock", loadSock)
	if err != nil {
		return nil, fmt.Errorf("load bpf_sock spec: %w", err)
	}
	// Unlike loadShared, keep bpf_ktime_get_ns: a translation's time is
	// compared with CLOCK_MONOTONIC, which the coarse clock trails by up
	// to a tick. The CT map's size is the datapath's (Options.CTEntries).
	Options{CTEntries: m.HoplabCt4Global.MaxEntries()}.resize(spec)
	if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: maps, Programs: progOpts}); err != nil {
		return nil, newLoadError("bpf_sock", err)
	}
	return spec, nil
}

// collectSockStats verifies the bpf_sock programs AttachSocketLB would
// attach on this kernel (recvmsg4 where it has it, the egress fallback
// everywhere) for Options.VerifierStats, and releases them.
func (d *Datapath) collectSockStats(progOpts ebpf.ProgramOptions) error {
	var (
		core   sockCore
		egress sockUDPEgress
		recv   sockRecvmsg
	)
	spec, err := d.loadSock(&core, progOpts)
	if err != nil {
		return err
	}
	progs := map[string]*ebpf.Program{"hoplab_sock4_connect": core.Connect4, "hoplab_sock4_sendmsg": core.Sendmsg4}
	defer func() {
		for _, p := range progs {
			p.Close()
		}
	}()
	if _, err := d.loadSock(&egress, progOpts); err != nil {
		return err
	}
	progs["hoplab_sock4_udp_egress"] = egress.Egress
	if HaveSockRecvmsg4() == nil {
		if _, err := d.loadSock(&recv, progOpts); err != nil {
			return err
		}
		progs["hoplab_sock4_recvmsg"] = recv.Recvmsg4
	}
	d.collectStats("bpf_sock", spec, progs)
	return nil
}

func (s *SocketLB) attach(d *Datapath, opts SocketLBOptions) error {
	load := func(objs any) error {
		_, err := d.loadSock(objs, ebpf.ProgramOptions{})
		return err
	}
	var core sockCore
	if err := load(&core); err != nil {
		return err
	}
	s.progs = append(s.progs, core.Connect4, core.Sendmsg4)
	if err := s.attachProgram(CgroupConnect4, ebpf.AttachCGroupInet4Connect, core.Connect4); err != nil {
		return err
	}
	if err := s.attachProgram(CgroupSendmsg4, ebpf.AttachCGroupUDP4Sendmsg, core.Sendmsg4); err != nil {
		return err
	}

	recvmsg := !opts.NoRecvmsg4
	if recvmsg {
		err := HaveSockRecvmsg4()
		if err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
			return err
		}
		recvmsg = err == nil
	}
	if recvmsg {
		var r sockRecvmsg
		if err := load(&r); err != nil {
			return err
		}
		s.progs = append(s.progs, r.Recvmsg4)
		return s.attachProgram(CgroupRecvmsg4, ebpf.AttachCGroupUDP4Recvmsg, r.Recvmsg4)
	}
	var e sockUDPEgress
	if err := load(&e); err != nil {
		return err
	}
	s.progs = append(s.progs, e.Egress)
	return s.attachProgram(CgroupUDPEgress, ebpf.AttachCGroupInetEgress, e.Egress)
}

func (s *SocketLB) attachProgram(hook string, typ ebpf.AttachType, prog *ebpf.Program) error {
	l, err := link.AttachCgroup(link.CgroupOptions{Path: s.cgroup, Attach: typ, Program: prog})
	if err != nil {
		return fmt.Errorf("%s: %w", hook, err)
	}
	s.links = append(s.links, l)
	s.hooks = append(s.hooks, hook)
	return nil
}

// Hooks lists the hooks attached, in order: CgroupConnect4, CgroupSendmsg4,
// then CgroupRecvmsg4 or, without it, CgroupUDPEgress.
func (s *SocketLB) Hooks() []string { return slices.Clone(s.hooks) }

// Cgroup returns the cgroup directory the programs are attached to.
func (s *SocketLB) Cgroup() string { return s.cgroup }

// Translation returns the last translation of the socket with the given
// cookie, or an error wrapping [ErrNotFound] when the socket LB never
// translated that socket (its address was no service's). Records stay
// after the socket closes, until the LRU map needs the room.
func (s *SocketLB) Translation(cookie uint64) (SockTranslation, error) {
	var v sockSock4Xlate
	if err := s.xlate.Lookup(cookie, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return SockTranslation{}, fmt.Errorf("socket translation of cookie %d: %w", cookie, ErrNotFound)
		}
		return SockTranslation{}, fmt.Errorf("socket translation of cookie %d: %w", cookie, err)
	}
	return sockTranslationFrom(cookie, &v), nil
}

// Translations returns the recorded translation of every socket, of every
// SocketLB of the datapath, oldest first.
func (s *SocketLB) Translations() ([]SockTranslation, error) {
	var (
		out    []SockTranslation
		cookie uint64
		v      sockSock4Xlate
	)
	it := s.xlate.Iterate()
	for it.Next(&cookie, &v) {
		out = append(out, sockTranslationFrom(cookie, &v))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("socket translations: %w", err)
	}
	slices.SortFunc(out, func(a, b SockTranslation) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.Cookie, b.Cookie))
	})
	return out, nil
}

// Close detaches the programs and releases them; the maps stay with the
// datapath. Before Linux 5.7 (no BPF links for cgroups) an attachment
// outlives the process that made it: only Close, or removing the cgroup,
// detaches it.
func (s *SocketLB) Close() error {
	var errs []error
	for i := len(s.links) - 1; i >= 0; i-- {
		if err := s.links[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach %s from %s: %w", s.hooks[i], s.cgroup, err))
		}
	}
	for _, p := range s.progs {
		if p != nil {
			p.Close()
		}
	}
	s.links, s.progs, s.hooks = nil, nil, nil
	return errors.Join(errs...)
}

// SocketCookie returns the cookie of a socket (getsockopt SO_COOKIE, Linux
// 4.12), the key of its [SockTranslation]: pass a *net.TCPConn,
// *net.UDPConn or anything else with a raw connection.
func SocketCookie(conn syscall.Conn) (uint64, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("socket cookie: %w", err)
	}
	var (
		cookie uint64
		serr   error
	)
	if err := raw.Control(func(fd uintptr) {
		cookie, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	}); err != nil {
		return 0, fmt.Errorf("socket cookie: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("socket cookie: %w", serr)
	}
	return cookie, nil
}
