package vmtest

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// Cmdline accumulates a QEMU command line: arguments, the files passed to
// QEMU as inherited descriptors, and unique device ids.
type Cmdline struct {
	// Args are the arguments after the QEMU binary.
	Args []string
	// Files are passed to QEMU as descriptors 3, 4, ...
	Files []*os.File

	// Repro renders descriptor-passing devices with socket paths instead,
	// for a command line a person can run by hand.
	Repro bool
	// ReproDir is where such sockets go.
	ReproDir string

	ids map[string]int
}

// Add appends arguments.
func (c *Cmdline) Add(args ...string) { c.Args = append(c.Args, args...) }

// ID allocates a unique id with the given prefix ("net" gives net0, net1).
func (c *Cmdline) ID(prefix string) string {
	if c.ids == nil {
		c.ids = map[string]int{}
	}
	n := c.ids[prefix]
	c.ids[prefix] = n + 1
	return fmt.Sprintf("%s%d", prefix, n)
}

// FD registers f to be inherited by QEMU and returns its descriptor number
// in QEMU.
func (c *Cmdline) FD(f *os.File) int {
	c.Files = append(c.Files, f)
	return 2 + len(c.Files)
}

// String renders the arguments as one shell-quoted line.
func (c *Cmdline) String() string {
	q := make([]string, len(c.Args))
	for i, a := range c.Args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Device is a piece of VM hardware that renders its own QEMU arguments.
type Device interface {
	// Render adds the device's arguments to c and remembers the ids it was
	// given.
	Render(c *Cmdline) error
}

// NIC is a virtio-net NIC on a QEMU dgram netdev over unix sockets: QEMU
// binds Local and sends to Remote. It reports 10 Gbit/s full duplex: an
// 802.3ad bond ignores ports of unknown speed and duplex.
type NIC struct {
	// Name is the NIC's name inside the guest once configured (eth0).
	Name string
	// MAC is the NIC's address; required (QEMU gives every VM the same
	// default).
	MAC net.HardwareAddr
	// Local is the socket QEMU binds.
	Local string
	// Remote is the socket QEMU sends to.
	Remote string

	// ID is the QEMU device id, set by Render; QMP set_link uses it.
	ID string
}

// Render implements [Device].
func (n *NIC) Render(c *Cmdline) error {
	if len(n.MAC) != 6 {
		return fmt.Errorf("nic %s: needs a MAC address", n.Name)
	}
	if n.Local == "" || n.Remote == "" {
		return fmt.Errorf("nic %s: needs local and remote socket paths", n.Name)
	}
	netdev := c.ID("net")
	n.ID = c.ID("nic")
	c.Add("-netdev", fmt.Sprintf("dgram,id=%s,local.type=unix,local.path=%s,remote.type=unix,remote.path=%s", netdev, n.Local, n.Remote),
		"-device", fmt.Sprintf("virtio-net-pci,netdev=%s,id=%s,mac=%s,speed=10000,duplex=full", netdev, n.ID, n.MAC))
	return nil
}

// socketChardev is a chardev on a socket descriptor handed to QEMU: a
// connected socket, or a listening one with server set.
type socketChardev struct {
	file   *os.File
	server bool
	id     string
}

func (s *socketChardev) render(c *Cmdline, prefix string) string {
	s.id = c.ID(prefix)
	if c.Repro {
		c.Add("-chardev", fmt.Sprintf("socket,id=%s,path=%s/%s.sock,server=on,wait=off", s.id, c.ReproDir, s.id))
		return s.id
	}
	arg := fmt.Sprintf("socket,id=%s,fd=%d", s.id, c.FD(s.file))
	if s.server {
		arg += ",server=on,wait=off"
	}
	c.Add("-chardev", arg)
	return s.id
}

// serialConsole is the guest's ttyS0 on a connected socket.
type serialConsole struct{ socketChardev }

// Render implements [Device].
func (s *serialConsole) Render(c *Cmdline) error {
	if c.Repro {
		c.Add("-serial", "stdio")
		return nil
	}
	id := s.render(c, "con")
	c.Add("-serial", "chardev:"+id)
	return nil
}

// qmpMonitor is the QMP monitor on a listening socket.
type qmpMonitor struct{ socketChardev }

// Render implements [Device].
func (q *qmpMonitor) Render(c *Cmdline) error {
	id := q.render(c, "qmp")
	c.Add("-mon", "chardev="+id+",mode=control")
	return nil
}

// controlPort is the agent's virtio-serial port on a connected socket.
type controlPort struct{ socketChardev }

// Render implements [Device].
func (p *controlPort) Render(c *Cmdline) error {
	id := p.render(c, "ctl")
	bus := c.ID("vser")
	c.Add("-device", "virtio-serial-pci,id="+bus,
		"-device", fmt.Sprintf("virtserialport,bus=%s.0,chardev=%s,name=%s", bus, id, control.PortName))
	return nil
}
