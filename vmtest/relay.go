package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// Relay serves a VM's agent to other processes on a unix socket (so that
// `hoplab vm exec` reaches a VM that `hoplab vm up` started): every
// connection speaks the control protocol, and each request is passed to the
// agent and answered on the same connection. Events are not relayed.
type Relay struct {
	ln    *net.UnixListener
	vm    *VM
	path  string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// ServeControl starts a [Relay] for vm's agent at path; [VM.Close] stops it.
func (vm *VM) ServeControl(path string) (*Relay, error) {
	if len(path) > 107 {
		return nil, fmt.Errorf("control relay: socket path %s too long", path)
	}
	_ = os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control relay: %w", err)
	}
	r := &Relay{ln: ln, vm: vm, path: path, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	vm.relayMu.Lock()
	vm.relays = append(vm.relays, r)
	vm.relayMu.Unlock()
	return r, nil
}

// Path is the relay's socket.
func (r *Relay) Path() string { return r.path }

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns[c] = struct{}{}
		r.mu.Unlock()
		r.wg.Add(1)
		go r.serve(c)
	}
}

func (r *Relay) serve(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		c.Close()
	}()
	// Deferred calls run last first: cancel the calls, then wait for them.
	var calls sync.WaitGroup
	defer calls.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := control.NewConn(c, c)
	for {
		m, err := conn.Read()
		if err != nil {
			return
		}
		if !m.IsRequest() {
			continue
		}
		calls.Add(1)
		go func() {
			defer calls.Done()
			var res json.RawMessage
			resp := &control.Message{ID: m.ID}
			if err := r.vm.Call(ctx, m.Method, m.Params, &res); err != nil {
				var re *control.RemoteError
				if errors.As(err, &re) {
					resp.Error, resp.Files = re.Message, re.Files
				} else {
					resp.Error = err.Error()
				}
			} else {
				resp.Result = res
			}
			_ = conn.Write(resp)
		}()
	}
}

// Close stops the relay and removes its socket.
func (r *Relay) Close() error {
	err := r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	_ = os.Remove(r.path)
	return err
}

// DialControl connects to a relay's socket and returns a client for the
// VM's agent.
func DialControl(path string) (*control.Client, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("dial control relay: %w", err)
	}
	return control.NewClient(c), nil
}

// ControlSocket is the path at which [Fabric.ServeControl] serves the
// agent of the VM called name in the run directory dir.
func ControlSocket(dir, name string) string { return filepath.Join(dir, name+".ctl") }

// ServeControl serves every VM's agent at [ControlSocket](f.Dir(), name)
// until the fabric is closed.
func (f *Fabric) ServeControl() error {
	for _, vm := range f.VMs() {
		if _, err := vm.ServeControl(ControlSocket(f.dir, vm.Name())); err != nil {
			return err
		}
	}
	return nil
}

// StateFile is the name of the file [Fabric.WriteState] writes in the run
// directory.
const StateFile = "fabric.json"

// FabricState describes a running fabric for other processes (`hoplab vm
// exec` finds the agents' relays in it, `hoplab vm down` the process to
// signal).
type FabricState struct {
	// PID is the process holding the fabric; SIGTERM or SIGINT to it tears
	// the fabric down (see [HandleSignals]).
	PID int `json:"pid"`
	// Dir is the run directory.
	Dir string `json:"dir"`
	// VMs are the ToR (first) and the nodes.
	VMs []VMState `json:"vms"`
	// Links are the harness wires.
	Links []LinkState `json:"links,omitempty"`
}

// VMState describes one VM of a [FabricState].
type VMState struct {
	// Name is the VM's name.
	Name string `json:"name"`
	// PID is QEMU's process id.
	PID int `json:"pid"`
	// Kernel is the guest's kernel release.
	Kernel string `json:"kernel"`
	// Control is the agent relay's socket (see [DialControl]).
	Control string `json:"control"`
	// Console is the console log.
	Console string `json:"console"`
}

// LinkState describes one wire of a [FabricState].
type LinkState struct {
	// Name is the wire's name ("node1-0").
	Name string `json:"name"`
	// Pcap is the wire's pcapng file, if it captures.
	Pcap string `json:"pcap,omitempty"`
}

// WriteState writes the fabric's [FabricState] to [StateFile] in its run
// directory and returns the file's path. Call [Fabric.ServeControl] first
// so that the control sockets it names exist.
func (f *Fabric) WriteState() (string, error) {
	s := FabricState{PID: os.Getpid(), Dir: f.dir}
	for _, vm := range f.VMs() {
		s.VMs = append(s.VMs, VMState{Name: vm.Name(), PID: vm.PID(), Kernel: vm.Ready().Release,
			Control: ControlSocket(f.dir, vm.Name()), Console: vm.path(".console.log")})
	}
	for _, w := range f.wireL {
		s.Links = append(s.Links, LinkState{Name: w.Name(), Pcap: w.PcapPath()})
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(f.dir, StateFile)
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write fabric state: %w", err)
	}
	return p, nil
}

// ReadState reads a [FabricState] file.
func ReadState(path string) (*FabricState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fabric state: %w", err)
	}
	var s FabricState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read fabric state %s: %w", path, err)
	}
	return &s, nil
}
