package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Methods and events of the cluster socket (package vmtest/protocol/control's
// protocol).
const (
	// MethodReplay (ReplayRequest → Result) replays frames (Cluster.Trace).
	MethodReplay = "cluster-replay"
	// MethodRun (nodeapi.ClientAction → nodeapi.ClientResult) runs client
	// actions from a pod.
	MethodRun = "cluster-run"
	// MethodReset (empty → empty) flushes CT and metrics everywhere.
	MethodReset = "cluster-reset"
	// MethodSubscribe (empty → empty) streams EventObservation events on
	// the connection until it closes.
	MethodSubscribe = "cluster-subscribe"
	// EventObservation carries an Event.
	EventObservation = "cluster-event"
)

// StateFileName is the name of the cluster's state file in its run
// directory.
const StateFileName = "cluster.json"

// SocketName is the name of the cluster socket in the run directory.
const SocketName = "cluster.sock"

// ReplayRequest is MethodReplay's request.
type ReplayRequest struct {
	// Frames are the frames to replay, each with its point.
	Frames []Frame `json:"frames"`
	// Options are Replay's options.
	Options ReplayOptions `json:"options"`
}

// State describes a served cluster for other processes.
type State struct {
	// PID is the process holding the cluster; SIGTERM to it tears the
	// cluster down.
	PID int `json:"pid"`
	// Dir is the run directory.
	Dir string `json:"dir"`
	// Topology is the topology's text (as Encode writes it) and File its
	// file name.
	Topology string `json:"topology"`
	File     string `json:"file"`
	// Kernel is the guests' kernel release.
	Kernel string `json:"kernel"`
	// Socket is the cluster socket (replay, client actions, observations).
	Socket string `json:"socket"`
	// Fabric is the fabric's state file (vmtest.FabricState: the agents'
	// relay sockets, QEMU pids, pcaps).
	Fabric string `json:"fabric"`
	// Control maps each VM's name to its agent's relay socket.
	Control map[string]string `json:"control"`
}

// server serves the cluster socket.
type server struct {
	c       *Cluster
	ln      *net.UnixListener
	path    string
	current string
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

// Serve makes the cluster reachable from other processes: the agents'
// relays (vmtest.Fabric.ServeControl), the fabric's state file, the cluster
// socket and the cluster's state file, whose path it returns and records as
// this user's current cluster (see CurrentStateFile). Close stops serving.
func (c *Cluster) Serve() (stateFile string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.serving != nil {
		return filepath.Join(c.fabric.Dir(), StateFileName), nil
	}
	f := c.fabric
	if err := f.ServeControl(); err != nil {
		return "", fmt.Errorf("cluster serve: %w", err)
	}
	fabricState, err := f.WriteState()
	if err != nil {
		return "", fmt.Errorf("cluster serve: %w", err)
	}
	text, err := Encode(c.top)
	if err != nil {
		return "", fmt.Errorf("cluster serve: %w", err)
	}
	sock := filepath.Join(f.Dir(), SocketName)
	_ = os.Remove(sock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return "", fmt.Errorf("cluster serve: %w", err)
	}
	s := &server{c: c, ln: ln, path: sock, conns: map[net.Conn]struct{}{}}
	st := State{PID: os.Getpid(), Dir: f.Dir(), Topology: string(text), File: c.top.File, Kernel: c.kernel,
		Socket: sock, Fabric: fabricState, Control: map[string]string{}}
	for _, vm := range f.VMs() {
		st.Control[vm.Name()] = vmtest.ControlSocket(f.Dir(), vm.Name())
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	stateFile = filepath.Join(f.Dir(), StateFileName)
	if err := os.WriteFile(stateFile, append(b, '\n'), 0o644); err != nil {
		ln.Close()
		return "", fmt.Errorf("cluster serve: %w", err)
	}
	if cur, err := currentPath(); err == nil {
		if err := os.MkdirAll(filepath.Dir(cur), 0o700); err == nil && os.WriteFile(cur, []byte(stateFile+"\n"), 0o644) == nil {
			s.current = cur
		}
	}
	s.wg.Add(1)
	go s.accept()
	c.serving = s
	c.log.Info("cluster served", "state", stateFile)
	return stateFile, nil
}

func (s *server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(conn)
	}
}

func (s *server) serve(nc net.Conn) {
	defer s.wg.Done()
	var calls sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	var stopSub func()
	var subMu sync.Mutex
	defer func() {
		cancel()
		calls.Wait()
		subMu.Lock()
		if stopSub != nil {
			stopSub()
		}
		subMu.Unlock()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		nc.Close()
	}()
	conn := control.NewConn(nc, nc)
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
			res, err := s.call(ctx, conn, m, &subMu, &stopSub)
			resp := &control.Message{ID: m.ID}
			if err != nil {
				resp.Error = err.Error()
			} else if resp.Result, err = control.Marshal(res); err != nil {
				resp.Error = err.Error()
			}
			_ = conn.Write(resp)
		}()
	}
}

func (s *server) call(ctx context.Context, conn *control.Conn, m *control.Message, subMu *sync.Mutex, stopSub *func()) (any, error) {
	c := s.c
	switch m.Method {
	case MethodReplay:
		var req ReplayRequest
		if err := control.Unmarshal(m.Params, &req); err != nil {
			return nil, err
		}
		return c.Trace(ctx, req.Frames, req.Options)
	case MethodRun:
		var a nodeapi.ClientAction
		if err := control.Unmarshal(m.Params, &a); err != nil {
			return nil, err
		}
		return c.Run(ctx, a)
	case MethodReset:
		return struct{}{}, c.Reset(ctx)
	case MethodSubscribe:
		subMu.Lock()
		defer subMu.Unlock()
		if *stopSub != nil {
			return struct{}{}, nil
		}
		stop, err := c.SubscribeContext(ctx, func(e Event) {
			data, err := control.Marshal(e)
			if err == nil {
				_ = conn.Write(&control.Message{Event: EventObservation, Data: data})
			}
		})
		if err != nil {
			return nil, err
		}
		*stopSub = stop
		return struct{}{}, nil
	}
	return nil, fmt.Errorf("%w %q", control.ErrUnknownMethod, m.Method)
}

func (s *server) close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	_ = os.Remove(s.path)
	if s.current != "" {
		if b, rerr := os.ReadFile(s.current); rerr == nil && strings.TrimSpace(string(b)) == filepath.Join(filepath.Dir(s.path), StateFileName) {
			_ = os.Remove(s.current)
		}
	}
	return err
}

// ErrNoCluster is matched by CurrentStateFile's error when no served
// cluster runs for this user.
var ErrNoCluster = errors.New("no running cluster (start one with `hoplab vm up`)")

// runtimeDir is where the current cluster is recorded:
// $XDG_RUNTIME_DIR/hoplab, else /tmp/hoplab-UID.
func runtimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "hoplab")
	}
	return filepath.Join(os.TempDir(), "hoplab-"+strconv.Itoa(os.Getuid()))
}

func currentPath() (string, error) { return filepath.Join(runtimeDir(), "current"), nil }

// CurrentStateFile returns the state file of the cluster this user serves
// (the last Serve whose process still runs), or an error matching
// ErrNoCluster.
func CurrentStateFile() (string, error) {
	cur, _ := currentPath()
	b, err := os.ReadFile(cur)
	if err != nil {
		return "", ErrNoCluster
	}
	path := strings.TrimSpace(string(b))
	st, err := readState(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s is stale (%w)", ErrNoCluster, cur, err)
	}
	if syscall.Kill(st.PID, 0) != nil && !errors.Is(syscall.Kill(st.PID, 0), syscall.EPERM) {
		return "", fmt.Errorf("%w: process %d of %s is gone", ErrNoCluster, st.PID, path)
	}
	return path, nil
}

func readState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read cluster state %s: %w", path, err)
	}
	return &st, nil
}
