package control

import "time"

// Ready is the data of [EventReady].
type Ready struct {
	// Release is the guest kernel's release (uname -r).
	Release string `json:"release"`
	// Uptime is the time since the kernel started (CLOCK_BOOTTIME) when the
	// agent became ready.
	Uptime time.Duration `json:"uptime"`
	// InitStart is the time since the kernel started at which the kernel
	// handed over to the agent (the agent process's start time).
	InitStart time.Duration `json:"init_start"`
	// Modules lists the kernel modules the agent loaded, in order.
	Modules []string `json:"modules,omitempty"`
	// Steps holds how long each start-up step took (mount, modules, port).
	Steps map[string]time.Duration `json:"steps,omitempty"`
}

// HandoverToReady is the time from the kernel starting init to the agent
// being ready.
func (r Ready) HandoverToReady() time.Duration { return r.Uptime - r.InitStart }

// Log is the data of [EventLog].
type Log struct {
	// Level is the slog level name (DEBUG, INFO, WARN, ERROR).
	Level string `json:"level"`
	// Msg is the log message with its attributes appended.
	Msg string `json:"msg"`
}

// Fatal is the data of [EventFatal].
type Fatal struct {
	// Error is the error that stops the agent.
	Error string `json:"error"`
}

// Uname is the result of [MethodUname].
type Uname struct {
	// Sysname is the operating system name (Linux).
	Sysname string `json:"sysname"`
	// Nodename is the host name.
	Nodename string `json:"nodename"`
	// Release is the kernel release (uname -r).
	Release string `json:"release"`
	// Version is the kernel version string (uname -v).
	Version string `json:"version"`
	// Machine is the hardware name (x86_64).
	Machine string `json:"machine"`
}

// BondMode is a Linux bonding mode by its kernel name.
type BondMode string

// Bonding modes the harness wires and tests.
const (
	// BondActiveBackup sends on one slave; the other takes over when it
	// loses carrier.
	BondActiveBackup BondMode = "active-backup"
	// BondBalanceXOR spreads flows over the slaves by a hash.
	BondBalanceXOR BondMode = "balance-xor"
	// Bond8023AD is LACP link aggregation; it needs a partner speaking LACP.
	Bond8023AD BondMode = "802.3ad"
)

// Configure is the parameter of [MethodConfigure]. Steps run in field order:
// sysctls, links, bonds, addresses, routes, then waiting for carrier.
type Configure struct {
	// Hostname, when set, becomes the guest's host name.
	Hostname string `json:"hostname,omitempty"`
	// Sysctls maps a sysctl key (net.ipv4.ip_forward) to its value.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Links renames and brings up NICs, found by MAC address.
	Links []Link `json:"links,omitempty"`
	// Bonds creates bonds over named links.
	Bonds []Bond `json:"bonds,omitempty"`
	// Addresses assigns addresses to links.
	Addresses []Address `json:"addresses,omitempty"`
	// Routes installs routes.
	Routes []Route `json:"routes,omitempty"`
	// WaitCarrier names links that must have carrier before configure
	// returns (a bond gets carrier once a slave is active); for an 802.3ad
	// bond configure also waits for its LACP partner.
	WaitCarrier []string `json:"wait_carrier,omitempty"`
	// Timeout bounds the whole configure call; zero means 10 s.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Link renames a NIC found by MAC and brings it up.
type Link struct {
	// MAC identifies the NIC (the harness sets every NIC's MAC).
	MAC string `json:"mac,omitempty"`
	// Name is the NIC's new name, or the NIC to act on when MAC is empty.
	Name string `json:"name"`
	// MTU, when not zero, is set on the NIC.
	MTU int `json:"mtu,omitempty"`
	// Down leaves the NIC down.
	Down bool `json:"down,omitempty"`
}

// Bond creates a bonding device over slaves.
type Bond struct {
	// Name is the bond's name (bond0).
	Name string `json:"name"`
	// Mode is the bonding mode.
	Mode BondMode `json:"mode"`
	// Slaves names the enslaved links, in order; the first is the primary
	// of an active-backup bond.
	Slaves []string `json:"slaves"`
	// MAC, when set, is the bond's address; else the first slave's.
	MAC string `json:"mac,omitempty"`
	// XmitHashPolicy is used by balance-xor and 802.3ad; default layer3+4.
	XmitHashPolicy string `json:"xmit_hash_policy,omitempty"`
	// MiimonMs is the link monitoring interval; default 50.
	MiimonMs int `json:"miimon_ms,omitempty"`
}

// Address assigns an address in CIDR notation to a link.
type Address struct {
	// Link is the device name.
	Link string `json:"link"`
	// CIDR is the address with its prefix length (10.255.1.11/24).
	CIDR string `json:"cidr"`
}

// Route installs a route.
type Route struct {
	// Dst is the destination prefix, or "default".
	Dst string `json:"dst"`
	// Gateway is the next hop; empty for a link route.
	Gateway string `json:"gateway,omitempty"`
	// Link is the output device; optional when Gateway is set.
	Link string `json:"link,omitempty"`
}

// Exec is the parameter of [MethodExec].
type Exec struct {
	// Argv is the command and its arguments; Argv[0] is looked up in PATH.
	Argv []string `json:"argv"`
	// Env is added to the agent's environment (KEY=VALUE).
	Env []string `json:"env,omitempty"`
	// Dir is the working directory.
	Dir string `json:"dir,omitempty"`
	// Stdin is written to the command's standard input.
	Stdin []byte `json:"stdin,omitempty"`
	// Timeout kills the command after this long; zero means 60 s.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// ExecResult is the result of [MethodExec].
type ExecResult struct {
	// ExitCode is the command's exit status; -1 when killed by a signal.
	ExitCode int `json:"exit_code"`
	// Stdout is the command's standard output.
	Stdout []byte `json:"stdout"`
	// Stderr is the command's standard error.
	Stderr []byte `json:"stderr"`
	// Duration is how long the command ran.
	Duration time.Duration `json:"duration"`
}

// UDPListen is the parameter of [MethodUDPListen]: bind UDP sockets and
// count what arrives until [MethodUDPStats] with Stop.
type UDPListen struct {
	// Address is the local address to bind; empty for all.
	Address string `json:"address,omitempty"`
	// Ports are the UDP ports to bind.
	Ports []int `json:"ports"`
}

// UDPListener is the result of [MethodUDPListen].
type UDPListener struct {
	// ID names the listener in [MethodUDPStats].
	ID int `json:"id"`
}

// UDPStats is the parameter of [MethodUDPStats].
type UDPStats struct {
	// ID is the listener.
	ID int `json:"id"`
	// WaitTotal makes the call wait until this many datagrams arrived or
	// Timeout passed.
	WaitTotal int `json:"wait_total,omitempty"`
	// Timeout bounds the wait; zero means no wait.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Stop closes the listener after reading its counters.
	Stop bool `json:"stop,omitempty"`
}

// UDPCounters is the result of [MethodUDPStats].
type UDPCounters struct {
	// Total is the number of datagrams received.
	Total int `json:"total"`
	// PerPort counts datagrams by local port.
	PerPort map[int]int `json:"per_port"`
	// Sources counts datagrams by source address:port.
	Sources map[string]int `json:"sources"`
	// MaxSeqGap is the largest gap seen in the sequence numbers that
	// [MethodUDPSend] writes into each datagram, per flow.
	MaxSeqGap int `json:"max_seq_gap"`
}

// UDPSend is the parameter of [MethodUDPSend]: send Count datagrams to each
// flow, round robin, Interval apart.
type UDPSend struct {
	// Flows are the destinations, each with its own source port.
	Flows []UDPFlow `json:"flows"`
	// Count is the number of datagrams per flow.
	Count int `json:"count"`
	// Interval is the pause between rounds; zero sends back to back.
	Interval time.Duration `json:"interval,omitempty"`
	// Size is the payload size in bytes; at least 16.
	Size int `json:"size,omitempty"`
}

// UDPFlow is one source port and destination of a [UDPSend].
type UDPFlow struct {
	// SrcPort is the local port; zero picks one.
	SrcPort int `json:"src_port,omitempty"`
	// Dst is the destination address:port.
	Dst string `json:"dst"`
}

// UDPSent is the result of [MethodUDPSend].
type UDPSent struct {
	// Sent is the number of datagrams written.
	Sent int `json:"sent"`
	// Errors is the number of failed writes.
	Errors int `json:"errors"`
	// LastError is the text of the last failed write.
	LastError string `json:"last_error,omitempty"`
}

// ReadFile is the parameter of [MethodReadFile]: read a guest file, such
// as /proc/net/bonding/bond0 (the guest has no shell to cat it with).
type ReadFile struct {
	// Path is the guest path.
	Path string `json:"path"`
}
