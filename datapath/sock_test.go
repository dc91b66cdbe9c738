package datapath

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/internal/netnstest"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/vmtest/agent/pods"
)

// The socket LB acts on sockets of processes in a cgroup, so each client
// call of these tests runs in a process of its own: the test binary again,
// with sockClientEnv set, moved into the test's cgroup before it makes its
// socket.
const sockClientEnv = "HOPLAB_TEST_SOCK_CLIENT"

// sockRequest is what a client process does: Op "tcp" connects to Dst and
// gets Payload echoed, "udp-sendto" sends Payload to Dst from an
// unconnected socket and receives the answer with its source address.
// "udp-connect" connects a UDP socket to Dst, sends Payload and receives
// the answer with its source address. Port, when set, is the socket's
// local port; Count repeats a "tcp" call on new sockets, and the reply
// lists every peer.
type sockRequest struct {
	NetNS   string `json:"netns"`
	Op      string `json:"op"`
	Dst     string `json:"dst"`
	Payload string `json:"payload"`
	Port    int    `json:"port,omitempty"`
	Count   int    `json:"count,omitempty"`
}

// sockReply is what it saw: its socket's cookie (SO_COOKIE), the socket's
// own and peer addresses (getsockname, getpeername), where the answer
// came from (recvfrom) and what it said, or the error.
type sockReply struct {
	Cookie uint64 `json:"cookie"`
	Local  string `json:"local"`
	Peer   string `json:"peer"`
	From   string `json:"from"`
	Data   string `json:"data"`
	Err    string `json:"err"`
	Errno  int    `json:"errno"`
	// Peers are the peers of every socket of a repeated call.
	Peers []string `json:"peers,omitempty"`
}

func init() {
	if req := os.Getenv(sockClientEnv); req != "" {
		os.Exit(sockClientMain(req))
	}
}

// sockClientMain is the client process: it waits for "go" on stdin (the
// test has moved it into the cgroup by then), enters the network namespace
// and makes the call.
func sockClientMain(arg string) int {
	var req sockRequest
	if err := json.Unmarshal([]byte(arg), &req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "wait for go:", err)
		return 2
	}
	runtime.LockOSThread()
	ns, err := netns.GetFromPath(req.NetNS)
	if err == nil {
		err = netns.Set(ns)
	}
	var rep sockReply
	if err == nil {
		rep, err = sockCall(req)
	}
	for i := 1; err == nil && i < req.Count; i++ {
		var more sockReply
		if more, err = sockCall(req); err == nil {
			rep.Peers = append(rep.Peers, more.Peer)
		}
	}
	if req.Count > 0 {
		rep.Peers = append([]string{rep.Peer}, rep.Peers...)
	}
	if err != nil {
		rep.Err = err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			rep.Errno = int(errno)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 2
	}
	return 0
}

// sendRawTCP sends one TCP SYN from port sport to dst through a raw
// socket (IP_HDRINCL: the kernel fills in the source address, the IP id
// and the header checksum): a packet of the pod no UDP socket made.
func sendRawTCP(dst netip.AddrPort, sport int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	pkt := make([]byte, 40)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, unix.IPPROTO_TCP
	a := dst.Addr().As4()
	copy(pkt[16:20], a[:])
	binary.BigEndian.PutUint16(pkt[20:], uint16(sport))
	binary.BigEndian.PutUint16(pkt[22:], dst.Port())
	pkt[32], pkt[33] = 5<<4, 0x02 // data offset 5 words, SYN
	if err := unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: a}); err != nil {
		return fmt.Errorf("raw sendto: %w", err)
	}
	return nil
}

// sockCall makes the call of req with raw sockets, so that every address
// is what the kernel reports.
func sockCall(req sockRequest) (sockReply, error) {
	var rep sockReply
	dst, err := netip.ParseAddrPort(req.Dst)
	if err != nil {
		return rep, err
	}
	if req.Op == "raw-tcp" {
		return rep, sendRawTCP(dst, req.Port)
	}
	sa := &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())}
	typ := unix.SOCK_STREAM
	if strings.HasPrefix(req.Op, "udp-") {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return rep, err
	}
	defer unix.Close(fd)
	if req.Port != 0 {
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: req.Port}); err != nil {
			return rep, fmt.Errorf("bind: %w", err)
		}
	}
	tv := unix.Timeval{Sec: 3}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	cookie := func() {
		rep.Cookie, _ = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		if l, err := unix.Getsockname(fd); err == nil {
			rep.Local = sockaddrString(l)
		}
		if p, err := unix.Getpeername(fd); err == nil {
			rep.Peer = sockaddrString(p)
		}
	}
	buf := make([]byte, 512)
	switch req.Op {
	case "tcp":
		err := unix.Connect(fd, sa)
		cookie()
		if err != nil {
			return rep, fmt.Errorf("connect: %w", err)
		}
		if _, err := unix.Write(fd, []byte(req.Payload)); err != nil {
			return rep, fmt.Errorf("write: %w", err)
		}
		n, _, err := recvfrom(fd, buf)
		if err != nil {
			return rep, fmt.Errorf("read: %w", err)
		}
		rep.Data = string(buf[:n])
	case "udp-sendto":
		err := unix.Sendto(fd, []byte(req.Payload), 0, sa)
		cookie()
		if err != nil {
			return rep, fmt.Errorf("sendto: %w", err)
		}
		n, from, err := recvfrom(fd, buf)
		if err != nil {
			return rep, fmt.Errorf("recvfrom: %w", err)
		}
		rep.Data, rep.From = string(buf[:n]), sockaddrString(from)
	case "udp-connect":
		err := unix.Connect(fd, sa)
		cookie()
		if err != nil {
			return rep, fmt.Errorf("connect: %w", err)
		}
		if _, err := unix.Write(fd, []byte(req.Payload)); err != nil {
			return rep, fmt.Errorf("write: %w", err)
		}
		n, from, err := recvfrom(fd, buf)
		if err != nil {
			return rep, fmt.Errorf("recvfrom: %w", err)
		}
		rep.Data, rep.From = string(buf[:n]), sockaddrString(from)
	default:
		return rep, fmt.Errorf("unknown op %q", req.Op)
	}
	return rep, nil
}

func sockaddrString(sa unix.Sockaddr) string {
	if in, ok := sa.(*unix.SockaddrInet4); ok {
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)).String()
	}
	return fmt.Sprintf("%T", sa)
}

// sockClient runs req in a new client process placed in cgroup.
func sockClient(t *testing.T, cgroup string, req sockRequest) sockReply {
	t.Helper()
	arg, err := json.Marshal(req)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sockClientEnv+"="+string(arg))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	must(t, err)
	must(t, cmd.Start())
	moveErr := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	if moveErr == nil {
		_, moveErr = io.WriteString(stdin, "go\n")
	}
	stdin.Close()
	if moveErr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("move the client into %s: %v", cgroup, moveErr)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client %s %s: %v\n%s", req.Op, req.Dst, err, stderr.String())
	}
	var rep sockReply
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("client reply %q: %v", stdout.String(), err)
	}
	t.Logf("client %s %s: %+v", req.Op, req.Dst, rep)
	return rep
}

var cgroupCounter atomic.Uint32

// testCgroup returns a new cgroup v2 directory, removed when the test
// ends: under the machine's cgroup2 mount, or under one the test mounts
// when there is none (a 4.19 VM).
func testCgroup(t *testing.T) string {
	t.Helper()
	root, err := cgroup2Mount()
	must(t, err)
	if root == "" {
		root = t.TempDir()
		if err := unix.Mount("cgroup2", root, "cgroup2", 0, ""); err != nil {
			t.Fatalf("mount cgroup2: %v", err)
		}
		t.Cleanup(func() { _ = unix.Unmount(root, 0) })
	}
	dir := filepath.Join(root, fmt.Sprintf("hoplab-test-%d-%d", os.Getpid(), cgroupCounter.Add(1)))
	must(t, os.Mkdir(dir, 0o755))
	t.Cleanup(func() {
		// The clients have exited; their cgroup empties right after.
		for i := 0; ; i++ {
			err := os.Remove(dir)
			if err == nil || i == 50 {
				if err != nil {
					t.Errorf("remove cgroup: %v", err)
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return dir
}

// cgroup2Mount returns where cgroup2 is mounted, or "".
func cgroup2Mount() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(pre); len(f) >= 5 {
			return f[4], nil
		}
	}
	return "", nil
}

// sockNode is the node of the real-socket tests: a network namespace with
// pod1 (the client) and pod2 (the servers) behind lxc devices with
// from-container attached, and a cgroup for the client processes.
type sockNode struct {
	dp             *Datapath
	client, server *pods.Pod
	cgroup         string
}

// newSockNode builds the node. pod2 listens on TCP 8080 and 9090 and UDP
// 5353 and echoes; the services are 10.224.1.1:80/TCP and :53/UDP, both
// backed by pod2 (rev-NAT ids 1 and 2).
func newSockNode(t *testing.T) *sockNode {
	t.Helper()
	dp := loadDatapath(t)
	netnstest.EnterNew(t)
	lo, err := netlink.LinkByName("lo")
	must(t, err)
	gw := netip.MustParseAddr("10.1.1.1")
	must(t, netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(32, 32)}}))
	n := &sockNode{dp: dp, cgroup: testCgroup(t)}
	for i, ep := range []testEndpoint{pod1, pod2} {
		p, err := pods.Create(pods.Spec{Name: podNS([]string{"hl-sk-pod1", "hl-sk-pod2"}[i]), IP: ep.addr(), MAC: ep.podMAC(),
			HostIfName: []string{"lxcsk1", "lxcsk2"}[i], HostMAC: ep.lxcMAC(), Gateway: gw})
		must(t, err)
		t.Cleanup(func() { _ = p.Delete() })
		e := ep.endpoint(false, false)
		e.IfIndex = p.HostIndex
		must(t, dp.Endpoints.Upsert(e))
		must(t, dp.AttachLXC(p.HostIfName))
		// As in TestRealSocketsThroughService: the kernel finishes the
		// checksums of rewritten packets from their pseudo-header sums.
		setTxChecksum(t, p.HostIfName, false)
		if i == 0 {
			n.client = p
		} else {
			n.server = p
		}
	}
	must(t, dp.Services.Upsert(webService(Backend{ID: 2, Addr: pod2.addr(), Port: 8080})))
	must(t, dp.Services.Upsert(dnsService(Backend{ID: 5, Addr: pod2.addr(), Port: 5353})))
	for _, port := range []int{8080, 9090} {
		n.tcpEcho(t, port)
	}
	n.udpEcho(t, 5353)
	return n
}

func (n *sockNode) tcpEcho(t *testing.T, port int) {
	var ln net.Listener
	must(t, n.server.Do(func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(pod2.ip, strconv.Itoa(port)))
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 512)
				if k, err := c.Read(buf); err == nil {
					_, _ = fmt.Fprintf(c, "%s from %s", buf[:k], c.LocalAddr())
				}
			}()
		}
	}()
}

func (n *sockNode) udpEcho(t *testing.T, port int) {
	var pc net.PacketConn
	must(t, n.server.Do(func() (err error) {
		pc, err = net.ListenPacket("udp4", net.JoinHostPort(pod2.ip, strconv.Itoa(port)))
		return err
	}))
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(fmt.Sprintf("%s from %s", buf[:k], pc.LocalAddr())), from)
		}
	}()
}

// call runs one client call from pod1.
func (n *sockNode) call(t *testing.T, op, dst, payload string) sockReply {
	t.Helper()
	return sockClient(t, n.cgroup, sockRequest{NetNS: n.client.NetNSPath(), Op: op, Dst: dst, Payload: payload})
}

// udpFrom sends a datagram from pod1's local port port to dst and returns
// where the answer came from.
func (n *sockNode) udpFrom(t *testing.T, port int, dst string) string {
	t.Helper()
	rep := sockClient(t, n.cgroup, sockRequest{NetNS: n.client.NetNSPath(), Op: "udp-sendto", Dst: dst, Payload: "q", Port: port})
	if rep.Err != "" || rep.Data != "q from 10.1.1.20:5353" {
		t.Fatalf("datagram from port %d to %s: %+v", port, dst, rep)
	}
	return rep.From
}

func attachSocketLB(t *testing.T, dp *Datapath, cgroup string, opts SocketLBOptions) *SocketLB {
	t.Helper()
	s, err := dp.AttachSocketLBWith(cgroup, opts)
	if err != nil {
		t.Fatalf("attach socket LB: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close socket LB: %v", err)
		}
	})
	t.Logf("socket LB hooks: %v", s.Hooks())
	return s
}

// monotonic is CLOCK_MONOTONIC, the clock of SockTranslation.Time.
func monotonic(t *testing.T) time.Duration {
	var ts unix.Timespec
	must(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
	return time.Duration(ts.Nano())
}

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	must(t, unix.Uname(&u))
	var maj, min int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &maj, &min)
	return maj > major || maj == major && min >= minor
}

// requireRecvmsg4 stops the test on a kernel without cgroup/recvmsg4, and
// fails it on one that should have it.
func requireRecvmsg4(t *testing.T) {
	t.Helper()
	err := HaveSockRecvmsg4()
	switch {
	case err == nil:
	case errors.Is(err, ebpf.ErrNotSupported) && !kernelAtLeast(t, 5, 2):
		testreq.Missing(t, "cgroup/recvmsg4 (Linux 5.2, 4.19.57): "+err.Error())
	default:
		t.Fatalf("HaveSockRecvmsg4: %v", err)
	}
}

// pod1's connect() to Service 10.224.1.1:80 is translated at the socket:
// the socket is connected to pod2:8080 (getpeername), the translation is
// recorded under its cookie, and from-container sees a connection to
// pod2:8080 that it does not DNAT (no service CT entry, no rev-NAT in the
// egress entry). A connect() to an address that is no service's is left
// alone and not recorded.
func TestSocketLBConnect(t *testing.T) {
	n := newSockNode(t)
	s := attachSocketLB(t, n.dp, n.cgroup, SocketLBOptions{})

	t.Log("pod1 connects to 10.224.1.1:80 and gets its bytes echoed by pod2:8080")
	before := monotonic(t)
	rep := n.call(t, "tcp", "10.224.1.1:80", "hello")
	after := monotonic(t)
	if rep.Err != "" {
		t.Fatalf("connect to the service: %s", rep.Err)
	}
	if rep.Peer != "10.1.1.20:8080" || rep.Data != "hello from 10.1.1.20:8080" {
		t.Errorf("peer %s, answer %q; want the socket connected to pod2:8080", rep.Peer, rep.Data)
	}

	t.Log("the translation is recorded under the socket's cookie")
	tr, err := s.Translation(rep.Cookie)
	must(t, err)
	want := fmt.Sprintf("cookie %d TCP connect4 10.224.1.1:80 -> 10.1.1.20:8080", rep.Cookie)
	if tr.String() != want || tr.BackendID != 2 || tr.RevNAT != 1 || tr.NoBackend || tr.Time < before || tr.Time > after {
		t.Errorf("translation %q %+v, want %q, backend 2, rev-NAT 1, at CLOCK_MONOTONIC %v..%v", tr, tr, want, before, after)
	}
	all, err := s.Translations()
	must(t, err)
	if len(all) != 1 || all[0] != tr {
		t.Errorf("translations %v, want just %v", all, tr)
	}

	t.Log("from-container: no DNAT, the flow is pod1 -> pod2:8080 from its first packet")
	sport := netip.MustParseAddrPort(rep.Local).Port()
	if e, err := n.dp.CT.Lookup(CTKey{Src: ap(pod1.addr(), sport), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService}); err == nil {
		t.Errorf("from-container load-balanced the flow too: service entry %v", e)
	}
	out := ctEntry(t, n.dp, CTKey{Src: ap(pod1.addr(), sport), Dst: ap(pod2.addr(), 8080), Proto: ProtoTCP, Flags: TupleOut})
	if out.RevNAT != 0 || out.BackendID != 0 || out.TxPackets < 3 {
		t.Errorf("egress entry %v: want no rev-NAT, no backend", out)
	}

	t.Log("a connect() to pod2:9090, no service's address, is untouched")
	rep = n.call(t, "tcp", "10.1.1.20:9090", "direct")
	if rep.Err != "" || rep.Peer != "10.1.1.20:9090" || rep.Data != "direct from 10.1.1.20:9090" {
		t.Errorf("direct connection: %+v", rep)
	}
	if tr, err := s.Translation(rep.Cookie); !errors.Is(err, ErrNotFound) {
		t.Errorf("direct connection recorded: %v (err %v)", tr, err)
	}

	t.Log("Close detaches: from-container load-balances the next connection, which stays connected to the VIP")
	must(t, s.Close())
	rep = n.call(t, "tcp", "10.224.1.1:80", "tc")
	if rep.Err != "" || rep.Peer != "10.224.1.1:80" || rep.Data != "tc from 10.1.1.20:8080" {
		t.Errorf("connection after Close: %+v", rep)
	}
}

// Each connect() picks a backend at random, as the tc path does for each
// new flow: with two backends, 24 connections reach both (all on one would
// happen once in 8 million runs).
func TestSocketLBPicksBackendsAtRandom(t *testing.T) {
	n := newSockNode(t)
	attachSocketLB(t, n.dp, n.cgroup, SocketLBOptions{})
	must(t, n.dp.Services.Upsert(webService(Backend{ID: 2, Addr: pod2.addr(), Port: 8080}, Backend{ID: 3, Addr: pod2.addr(), Port: 9090})))
	rep := sockClient(t, n.cgroup, sockRequest{NetNS: n.client.NetNSPath(), Op: "tcp", Dst: "10.224.1.1:80", Payload: "x", Count: 24})
	if rep.Err != "" {
		t.Fatalf("connections: %s", rep.Err)
	}
	seen := map[string]int{}
	for _, p := range rep.Peers {
		seen[p]++
	}
	if len(rep.Peers) != 24 || len(seen) != 2 || seen["10.1.1.20:8080"] == 0 || seen["10.1.1.20:9090"] == 0 {
		t.Errorf("peers %v of %d connections, want both backends", seen, len(rep.Peers))
	}
}

// A connected UDP socket (connect4) is connected to the backend; with
// recvmsg4 the answers appear to come from the VIP. The fallback must
// leave their source alone, or the connected socket would drop them: it
// then reports the backend, as getpeername does.
func TestSocketLBUDPConnected(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			if !fallback {
				requireRecvmsg4(t)
			}
			n := newSockNode(t)
			s := attachSocketLB(t, n.dp, n.cgroup, SocketLBOptions{NoRecvmsg4: fallback})
			rep := n.call(t, "udp-connect", "10.224.1.1:53", "query")
			if rep.Err != "" {
				t.Fatalf("udp connect: %s", rep.Err)
			}
			from := "10.224.1.1:53"
			if fallback {
				from = "10.1.1.20:5353"
			}
			if rep.Peer != "10.1.1.20:5353" || rep.Data != "query from 10.1.1.20:5353" || rep.From != from {
				t.Errorf("peer %s, answer %q from %s; want peer pod2:5353, its answer from %s", rep.Peer, rep.Data, rep.From, from)
			}
			tr, err := s.Translation(rep.Cookie)
			must(t, err)
			if want := fmt.Sprintf("cookie %d UDP connect4 10.224.1.1:53 -> 10.1.1.20:5353", rep.Cookie); tr.String() != want {
				t.Errorf("translation %q, want %q", tr, want)
			}
		})
	}
}

// A socket outside the cgroup is not translated: pod1's connect() to the
// service is then load-balanced by from-container, and the socket stays
// connected to the VIP.
func TestSocketLBOnlyItsCgroup(t *testing.T) {
	n := newSockNode(t)
	s := attachSocketLB(t, n.dp, testCgroup(t), SocketLBOptions{})
	rep := n.call(t, "tcp", "10.224.1.1:80", "tc")
	if rep.Err != "" || rep.Peer != "10.224.1.1:80" || rep.Data != "tc from 10.1.1.20:8080" {
		t.Errorf("connection from another cgroup: %+v; want it connected to the VIP, DNATed by from-container", rep)
	}
	if tr, err := s.Translation(rep.Cookie); !errors.Is(err, ErrNotFound) {
		t.Errorf("socket of another cgroup recorded: %v (err %v)", tr, err)
	}
	sport := netip.MustParseAddrPort(rep.Local).Port()
	ctEntry(t, n.dp, CTKey{Src: ap(pod1.addr(), sport), Dst: ap(vip, 80), Proto: ProtoTCP, Flags: TupleService})
}

// A service without backends fails connect() (EPERM: 4.19 cannot choose
// the errno), and the rejection is recorded.
func TestSocketLBNoBackend(t *testing.T) {
	n := newSockNode(t)
	s := attachSocketLB(t, n.dp, n.cgroup, SocketLBOptions{})
	must(t, n.dp.Services.Upsert(webService()))
	rep := n.call(t, "tcp", "10.224.1.1:80", "nobody")
	if rep.Errno != int(unix.EPERM) {
		t.Fatalf("connect to a service without backends: %+v, want EPERM", rep)
	}
	tr, err := s.Translation(rep.Cookie)
	must(t, err)
	if want := fmt.Sprintf("cookie %d TCP connect4 10.224.1.1:80 -> no backend (rejected)", rep.Cookie); tr.String() != want || !tr.NoBackend {
		t.Errorf("translation %q, want %q", tr, want)
	}
}

// pod1 sends a datagram to 10.224.1.1:53 from an unconnected socket:
// sendmsg4 sends it to pod2:5353, and recvmsg4 reports pod2's answer as
// coming from 10.224.1.1:53, the address pod1 sent to.
func TestSocketLBUDPRecvmsg(t *testing.T) {
	requireRecvmsg4(t)
	n := newSockNode(t)
	s := attachSocketLB(t, n.dp, n.cgroup, SocketLBOptions{})
	if h := strings.Join(s.Hooks(), " "); h != "cgroup/connect4 cgroup/sendmsg4 cgroup/recvmsg4" {
		t.Fatalf("hooks %s, want connect4, sendmsg4, recvmsg4", h)
	}
	rep := n.call(t, "udp-sendto", "10.224.1.1:53", "query")
	if rep.Err != "" {
		t.Fatalf("udp: %s", rep.Err)
	}
	if rep.Data != "query from 10.1.1.20:5353" || rep.From != "10.224.1.1:53" {
		t.Errorf("answer %q from %s; want pod2:5353's answer, from 10.224.1.1:53", rep.Data, rep.From)
	}
	tr, err := s.Translation(rep.Cookie)
	must(t, err)
	if want := fmt.Sprintf("cookie %d UDP sendmsg4 10.224.1.1:53 -> 10.1.1.20:5353", rep.Cookie); tr.String() != want || tr.RevNAT != 2 {
		t.Errorf("translation %q rev-NAT %d, want %q, 2", tr, tr.RevNAT, want)
	}
	t.Log("the tc path leaves the reply alone: the egress entry has no rev-NAT")
	sport := netip.MustParseAddrPort(rep.Local).Port()
	if out := ctEntry(t, n.dp, CTKey{Src: ap(pod1.addr(), sport), Dst: ap(pod2.addr(), 5353), Proto: ProtoUDP, Flags: TupleOut}); out.RevNAT != 0 {
		t.Errorf("egress entry %v: want no rev-NAT with recvmsg4", out)
	}
}

// The fallback of kernels without recvmsg4, forced on this one: the
// cgroup's egress program records the flow sendmsg4 translated,
// from-container puts the service's rev-NAT index in its CT entry, and
// to-container rewrites pod2's answer to come from 10.224.1.1:53.
func TestSocketLBUDPFallback(t *testing.T) {
	n := newSockNode(t)
	s := attachSocketLB(t, n.dp, n.cgroup, SocketLBOptions{NoRecvmsg4: true})
	if h := strings.Join(s.Hooks(), " "); h != "cgroup/connect4 cgroup/sendmsg4 cgroup_skb/egress" {
		t.Fatalf("hooks %s, want connect4, sendmsg4 and the egress fallback", h)
	}
	rep := n.call(t, "udp-sendto", "10.224.1.1:53", "query")
	if rep.Err != "" {
		t.Fatalf("udp: %s", rep.Err)
	}
	if rep.Data != "query from 10.1.1.20:5353" || rep.From != "10.224.1.1:53" {
		t.Errorf("answer %q from %s; want pod2:5353's answer, from 10.224.1.1:53", rep.Data, rep.From)
	}
	sport := netip.MustParseAddrPort(rep.Local).Port()
	flow := lxcCtKey{Daddr: mustBE32(t, pod2.addr()), Saddr: mustBE32(t, pod1.addr()), Dport: be16(5353), Sport: be16(sport), Nexthdr: uint8(ProtoUDP)}
	var rev sockSock4Reverse
	must(t, n.dp.lxc.HoplabSock4UdpFlows.Lookup(&flow, &rev))
	if got := netip.AddrPortFrom(addrFrom32(rev.Address), port16(rev.Port)); got != ap(vip, 53) || rev.RevNatIndex != 2 || SockHook(rev.Hook) != SockSendmsg4 {
		t.Errorf("flow record %v rev-NAT %d hook %v", got, rev.RevNatIndex, SockHook(rev.Hook))
	}
	if out := ctEntry(t, n.dp, CTKey{Src: ap(pod1.addr(), sport), Dst: ap(pod2.addr(), 5353), Proto: ProtoUDP, Flags: TupleOut}); out.RevNAT != 2 {
		t.Errorf("egress entry %v: want rev-NAT 2", out)
	}

	t.Log("a datagram straight to pod2:5353 from another socket of pod1 keeps pod2 as the source of the answer")
	rep = n.call(t, "udp-sendto", "10.1.1.20:5353", "direct")
	if rep.Err != "" || rep.From != "10.1.1.20:5353" {
		t.Errorf("direct datagram: %+v, want the answer from pod2:5353", rep)
	}
}

// The flow's CT entry outlives its socket: in the fallback, the egress
// program sets its rev-NAT index for each later socket on the same port,
// so that only the answers to datagrams sent to the service come from the
// service.
func TestSocketLBUDPFallbackPortReuse(t *testing.T) {
	n := newSockNode(t)
	attachSocketLB(t, n.dp, n.cgroup, SocketLBOptions{NoRecvmsg4: true})
	const port = 40053
	key := CTKey{Src: ap(pod1.addr(), port), Dst: ap(pod2.addr(), 5353), Proto: ProtoUDP, Flags: TupleOut}
	for i, step := range []struct{ dst, from string }{
		{"10.224.1.1:53", "10.224.1.1:53"},
		{"10.1.1.20:5353", "10.1.1.20:5353"},
		{"10.224.1.1:53", "10.224.1.1:53"},
	} {
		t.Logf("socket %d on port %d sends to %s", i+1, port, step.dst)
		if from := n.udpFrom(t, port, step.dst); from != step.from {
			t.Errorf("socket %d: answer from %s, want %s", i+1, from, step.from)
		}
		wantRevNAT := uint16(0)
		if step.from == "10.224.1.1:53" {
			wantRevNAT = 2
		}
		if e := ctEntry(t, n.dp, key); e.RevNAT != wantRevNAT {
			t.Errorf("socket %d: egress entry rev-NAT %d, want %d", i+1, e.RevNAT, wantRevNAT)
		}
	}
}

// The egress fallback reads UDP datagrams only: a TCP segment from the
// same port of pod1 to the same destination (from a raw socket of the pod)
// leaves the UDP flow's record and its egress entry's rev-NAT index alone.
func TestSocketLBUDPFallbackIgnoresTCP(t *testing.T) {
	n := newSockNode(t)
	attachSocketLB(t, n.dp, n.cgroup, SocketLBOptions{NoRecvmsg4: true})
	const port = 40054
	if from := n.udpFrom(t, port, "10.224.1.1:53"); from != "10.224.1.1:53" {
		t.Fatalf("answer from %s, want 10.224.1.1:53", from)
	}
	flow := lxcCtKey{Daddr: mustBE32(t, pod2.addr()), Saddr: mustBE32(t, pod1.addr()), Dport: be16(5353), Sport: be16(port), Nexthdr: uint8(ProtoUDP)}
	key := CTKey{Src: ap(pod1.addr(), port), Dst: ap(pod2.addr(), 5353), Proto: ProtoUDP, Flags: TupleOut}
	assertRecorded := func(when string) {
		t.Helper()
		var rev sockSock4Reverse
		if err := n.dp.lxc.HoplabSock4UdpFlows.Lookup(&flow, &rev); err != nil || rev.RevNatIndex != 2 {
			t.Fatalf("%s: flow record %+v, %v; want rev-NAT 2", when, rev, err)
		}
		if e := ctEntry(t, n.dp, key); e.RevNAT != 2 {
			t.Fatalf("%s: egress entry rev-NAT %d, want 2", when, e.RevNAT)
		}
	}
	assertRecorded("after the datagram")
	rep := sockClient(t, n.cgroup, sockRequest{NetNS: n.client.NetNSPath(), Op: "raw-tcp", Dst: "10.1.1.20:5353", Port: port})
	if rep.Err != "" {
		t.Fatalf("raw TCP: %s", rep.Err)
	}
	tcp := CTKey{Src: ap(pod1.addr(), port), Dst: ap(pod2.addr(), 5353), Proto: ProtoTCP, Flags: TupleOut}
	if _, err := n.dp.CT.Lookup(tcp); err != nil {
		t.Fatalf("the TCP segment did not leave pod1 (no egress entry %v): %v", tcp, err)
	}
	assertRecorded("after the TCP segment")
}

func mustBE32(t testing.TB, a netip.Addr) uint32 {
	t.Helper()
	v, err := be32(a)
	must(t, err)
	return v
}

// The tc half of the fallback, packet by packet (BPF_PROG_TEST_RUN): a UDP
// flow the egress program recorded (pod1:40000 -> pod4:5353, sent to
// 10.224.1.1:53) leaves from-container unchanged, with the service's
// rev-NAT index in its egress CT entry; pod4's answer arriving from the
// ToR is rewritten by to-container to come from 10.224.1.1:53. Without the
// record, the answer keeps pod4's address.
func TestSocketLBUDPFallbackTC(t *testing.T) {
	for _, recorded := range []bool{true, false} {
		t.Run(fmt.Sprintf("recorded=%v", recorded), func(t *testing.T) {
			dp := loadDatapath(t)
			must(t, dp.Services.Upsert(dnsService(Backend{ID: 4, Addr: pod4IP, Port: 5353})))
			if recorded {
				flow := lxcCtKey{Daddr: mustBE32(t, pod4IP), Saddr: mustBE32(t, pod1.addr()), Dport: be16(5353), Sport: be16(40000), Nexthdr: uint8(ProtoUDP)}
				rev := sockSock4Reverse{Address: mustBE32(t, vip), Port: be16(53), RevNatIndex: 2, Hook: uint8(SockSendmsg4)}
				must(t, dp.lxc.HoplabSock4UdpFlows.Put(&flow, &rev))
			}

			t.Log("pod1's datagram, already addressed to pod4:5353 by sendmsg4")
			in := fromPod(pod1, pod4IP, 5353)
			in.proto = ProtoUDP
			res := run(t, dp.FromContainer, in.bytes(t), nil)
			res.assertVerdict(t, tcActOK)
			res.assertPacket(t, in.bytes(t)) // no DNAT
			if e, err := dp.CT.Lookup(CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 5353), Proto: ProtoUDP, Flags: TupleService}); err == nil {
				t.Errorf("service entry %v for a flow to a backend", e)
			}
			wantRevNAT := uint16(0)
			if recorded {
				wantRevNAT = 2
			}
			if out := ctEntry(t, dp, CTKey{Src: ap(pod1.addr(), 40000), Dst: ap(pod4IP, 5353), Proto: ProtoUDP, Flags: TupleOut}); out.RevNAT != wantRevNAT || out.BackendID != 0 {
				t.Errorf("egress entry %v, want rev-NAT %d, no backend", out, wantRevNAT)
			}

			t.Log("pod4:5353 answers; it arrives from the ToR")
			reply := pkt{srcMAC: torMAC, dstMAC: bond0MAC, src: pod4IP, dst: pod1.addr(), ttl: 62,
				proto: ProtoUDP, sport: 5353, dport: 40000, payload: []byte("answer")}
			res = run(t, dp.FromNetdev, reply.bytes(t), nil)
			res.assertVerdict(t, tcActRedirect)
			want := reply
			want.ttl = 61
			want.srcMAC, want.dstMAC = pod1.lxcMAC(), pod1.podMAC()
			if recorded {
				want.src, want.sport = vip, 53
			}
			res.assertPacket(t, want.bytes(t))
		})
	}
}

// String names the cookie, the protocol, the hook and both addresses.
func TestSockTranslationString(t *testing.T) {
	tr := SockTranslation{Cookie: 1234, Proto: ProtoTCP, Hook: SockConnect4,
		Service: ap(netip.MustParseAddr("10.224.1.1"), 80), Backend: ap(pod4IP, 8080)}
	if got, want := tr.String(), "cookie 1234 TCP connect4 10.224.1.1:80 -> 10.1.2.40:8080"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	tr.Proto, tr.Hook, tr.NoBackend, tr.Backend = ProtoUDP, SockSendmsg4, true, netip.AddrPort{}
	if got, want := tr.String(), "cookie 1234 UDP sendmsg4 10.224.1.1:80 -> no backend (rejected)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// The probe finds recvmsg4 on every kernel from 5.2.
func TestHaveSockRecvmsg4(t *testing.T) {
	testreq.Root(t)
	err := HaveSockRecvmsg4()
	t.Logf("HaveSockRecvmsg4: %v", err)
	if kernelAtLeast(t, 5, 2) && err != nil {
		t.Errorf("HaveSockRecvmsg4 on a kernel from 5.2: %v", err)
	}
	if err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		t.Errorf("HaveSockRecvmsg4: %v, want nil or ErrNotSupported", err)
	}
}
