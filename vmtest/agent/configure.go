package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// Configure applies c to the guest's network: sysctls, NIC names, bonds,
// addresses and routes, then waits for carrier on c.WaitCarrier. Errors
// name the step that failed ("bond bond0: ..."); the caller names the
// operation.
func Configure(ctx context.Context, c control.Configure) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.Hostname != "" {
		if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	for k, v := range c.Sysctls {
		if err := SetSysctl(k, v); err != nil {
			return err
		}
	}
	for _, l := range c.Links {
		if err := configureLink(l); err != nil {
			return fmt.Errorf("link %s: %w", l.Name, err)
		}
	}
	for _, b := range c.Bonds {
		if err := configureBond(b); err != nil {
			return fmt.Errorf("bond %s: %w", b.Name, err)
		}
	}
	for _, a := range c.Addresses {
		if err := configureAddress(a); err != nil {
			return fmt.Errorf("address %s on %s: %w", a.CIDR, a.Link, err)
		}
	}
	for _, r := range c.Routes {
		if err := configureRoute(r); err != nil {
			return fmt.Errorf("route %s: %w", r.Dst, err)
		}
	}
	lacp := map[string][]string{}
	for _, b := range c.Bonds {
		if b.Mode == control.Bond8023AD {
			lacp[b.Name] = b.Slaves
		}
	}
	for _, name := range c.WaitCarrier {
		if err := WaitCarrier(ctx, name); err != nil {
			return err
		}
		if slaves, ok := lacp[name]; ok {
			if err := WaitLACP(ctx, name, slaves); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetSysctl writes value to the sysctl key (dotted form, net.ipv4.ip_forward).
func SetSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

func linkByMAC(mac net.HardwareAddr) (netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if l.Type() == "device" && l.Attrs().HardwareAddr.String() == mac.String() {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no NIC with MAC %s", mac)
}

func configureLink(c control.Link) error {
	var l netlink.Link
	var err error
	if c.MAC != "" {
		mac, perr := net.ParseMAC(c.MAC)
		if perr != nil {
			return perr
		}
		l, err = linkByMAC(mac)
	} else {
		l, err = netlink.LinkByName(c.Name)
	}
	if err != nil {
		return err
	}
	if l.Attrs().Name != c.Name {
		if err := netlink.LinkSetDown(l); err != nil {
			return err
		}
		if err := netlink.LinkSetName(l, c.Name); err != nil {
			return fmt.Errorf("rename %s: %w", l.Attrs().Name, err)
		}
	}
	if c.MTU != 0 {
		if err := netlink.LinkSetMTU(l, c.MTU); err != nil {
			return err
		}
	}
	if c.Down {
		return netlink.LinkSetDown(l)
	}
	return netlink.LinkSetUp(l)
}

func configureBond(c control.Bond) error {
	mode := netlink.StringToBondMode(string(c.Mode))
	if mode == netlink.BOND_MODE_UNKNOWN {
		return fmt.Errorf("unknown bond mode %q", c.Mode)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = c.Name
	if c.MAC != "" {
		mac, err := net.ParseMAC(c.MAC)
		if err != nil {
			return err
		}
		attrs.HardwareAddr = mac
	}
	b := netlink.NewLinkBond(attrs)
	b.Mode = mode
	b.Miimon = c.MiimonMs
	if b.Miimon == 0 {
		b.Miimon = 50
	}
	if mode == netlink.BOND_MODE_BALANCE_XOR || mode == netlink.BOND_MODE_802_3AD {
		pol := c.XmitHashPolicy
		if pol == "" {
			pol = "layer3+4"
		}
		b.XmitHashPolicy = netlink.StringToBondXmitHashPolicy(pol)
	}
	if mode == netlink.BOND_MODE_802_3AD {
		b.LacpRate = netlink.BOND_LACP_RATE_FAST
	}
	if err := addBond(b); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	bl, err := netlink.LinkByName(c.Name)
	if err != nil {
		return err
	}
	for _, s := range c.Slaves {
		sl, err := netlink.LinkByName(s)
		if err != nil {
			return fmt.Errorf("slave: %w", err)
		}
		if err := netlink.LinkSetDown(sl); err != nil {
			return fmt.Errorf("slave %s down: %w", s, err)
		}
		if err := netlink.LinkSetMasterByIndex(sl, bl.Attrs().Index); err != nil {
			return fmt.Errorf("enslave %s: %w", s, err)
		}
	}
	if mode == netlink.BOND_MODE_ACTIVE_BACKUP && len(c.Slaves) > 0 {
		p := filepath.Join("/sys/class/net", c.Name, "bonding/primary")
		if err := os.WriteFile(p, []byte(c.Slaves[0]), 0o644); err != nil {
			return fmt.Errorf("primary: %w", err)
		}
	}
	for _, s := range c.Slaves {
		if sl, err := netlink.LinkByName(s); err == nil {
			_ = netlink.LinkSetUp(sl)
		}
	}
	return netlink.LinkSetUp(bl)
}

// addBond creates b. A bond of that name that the kernel made by itself (a
// bonding driver built in and booted without bonding.max_bonds=0 makes
// bond0 with no slaves) is replaced, so the bond gets the requested mode
// and MAC; any other link of that name is an error.
func addBond(b *netlink.Bond) error {
	err := netlink.LinkAdd(b)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	old, lerr := netlink.LinkByName(b.Name)
	if lerr != nil || old.Type() != "bond" {
		return err
	}
	if slaves, _ := filepath.Glob(filepath.Join("/sys/class/net", b.Name, "lower_*")); len(slaves) > 0 {
		return fmt.Errorf("%w (a bond with slaves %v)", err, slaves)
	}
	if derr := netlink.LinkDel(old); derr != nil {
		return fmt.Errorf("replace the kernel's %s: %w", b.Name, derr)
	}
	return netlink.LinkAdd(b)
}

func configureAddress(c control.Address) error {
	l, err := netlink.LinkByName(c.Link)
	if err != nil {
		return err
	}
	a, err := netlink.ParseAddr(c.CIDR)
	if err != nil {
		return err
	}
	return netlink.AddrReplace(l, a)
}

func configureRoute(c control.Route) error {
	r := &netlink.Route{}
	if c.Dst != "" && c.Dst != "default" {
		_, dst, err := net.ParseCIDR(c.Dst)
		if err != nil {
			return err
		}
		r.Dst = dst
	}
	if c.Gateway != "" {
		r.Gw = net.ParseIP(c.Gateway)
		if r.Gw == nil {
			return fmt.Errorf("bad gateway %q", c.Gateway)
		}
	}
	if c.Link != "" {
		l, err := netlink.LinkByName(c.Link)
		if err != nil {
			return err
		}
		r.LinkIndex = l.Attrs().Index
	}
	if r.Gw == nil && r.LinkIndex == 0 {
		return errors.New("route needs a gateway or a link")
	}
	return netlink.RouteReplace(r)
}

// WaitCarrier waits until the named link reports carrier.
func WaitCarrier(ctx context.Context, name string) error {
	p := filepath.Join("/sys/class/net", name, "carrier")
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) == "1" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait carrier on %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// WaitLACP waits until every slave of the 802.3ad bond name collects and
// distributes (LACP negotiated with the partner): before that the bond
// drops traffic or sends it all on one port.
func WaitLACP(ctx context.Context, name string, slaves []string) error {
	const collectingDistributing = 0x30 // LACP actor state bits
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var waiting []string
		for _, s := range slaves {
			b, err := os.ReadFile(filepath.Join("/sys/class/net", s, "bonding_slave/ad_actor_oper_port_state"))
			st, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || st&collectingDistributing != collectingDistributing {
				waiting = append(waiting, fmt.Sprintf("%s (state %#x)", s, st))
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for LACP on %s: %v not distributing: %w", name, waiting, ctx.Err())
		case <-t.C:
		}
	}
}
