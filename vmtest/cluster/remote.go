package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Handle is what *Cluster and *Remote both offer: code that works on a
// cluster of its own or on one another process serves takes a Handle.
type Handle interface {
	// Topology is the topology the cluster runs.
	Topology() *topologies.Topology
	// Client returns the protocol client of a node or the router, or nil.
	Client(name string) *nodeapi.Client
	// Kernel is the guests' kernel release.
	Kernel() string
	// Replay replays frames (see Cluster.Replay).
	Replay(ctx context.Context, frames []Frame, opts ReplayOptions) (journey.Report, error)
	// Trace is Replay with the replies' journeys.
	Trace(ctx context.Context, frames []Frame, opts ReplayOptions) (Result, error)
	// Run runs client actions from a pod.
	Run(ctx context.Context, a nodeapi.ClientAction) (nodeapi.ClientResult, error)
	// Reset flushes CT and metrics everywhere.
	Reset(ctx context.Context) error
	// SubscribeContext streams observations until stop is called.
	SubscribeContext(ctx context.Context, fn func(Event)) (stop func(), err error)
	// Close ends a Cluster, and only detaches a Remote.
	Close() error
}

var (
	_ Handle = (*Cluster)(nil)
	_ Handle = (*Remote)(nil)
)

// Remote is a cluster served by another process (Cluster.Serve), attached
// with Attach.
type Remote struct {
	state *State
	path  string
	top   *topologies.Topology

	mu      sync.Mutex
	clients map[string]*nodeapi.Client
	ctls    []*control.Client
	socks   []*control.Client
}

// Attach opens the cluster described by a state file (Cluster.Serve's, or
// CurrentStateFile's answer).
func Attach(stateFile string) (*Remote, error) {
	st, err := readState(stateFile)
	if err != nil {
		return nil, err
	}
	top, err := topologies.Parse(st.File, []byte(st.Topology))
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", stateFile, err)
	}
	r := &Remote{state: st, path: stateFile, top: top, clients: map[string]*nodeapi.Client{}}
	names := make([]string, 0, len(st.Control))
	for n := range st.Control {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cl, err := vmtest.DialControl(st.Control[n])
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("attach %s: %s: %w", stateFile, n, err)
		}
		r.ctls = append(r.ctls, cl)
		r.clients[n] = nodeapi.NewControlClient(n, cl)
	}
	return r, nil
}

// State is the state file's content.
func (r *Remote) State() State { return *r.state }

// Topology is the served topology.
func (r *Remote) Topology() *topologies.Topology { return r.top }

// Client returns the protocol client of a node or the router, or nil.
func (r *Remote) Client(name string) *nodeapi.Client { return r.clients[name] }

// Kernel is the guests' kernel release.
func (r *Remote) Kernel() string { return r.state.Kernel }

// dial opens a connection to the cluster socket.
func (r *Remote) dial(h ...control.EventHandler) (*control.Client, error) {
	nc, err := net.Dial("unix", r.state.Socket)
	if err != nil {
		return nil, fmt.Errorf("cluster socket: %w", err)
	}
	cl := control.NewClient(nc, h...)
	r.mu.Lock()
	r.socks = append(r.socks, cl)
	r.mu.Unlock()
	return cl, nil
}

func (r *Remote) call(ctx context.Context, method string, params, result any) error {
	cl, err := r.dial()
	if err != nil {
		return err
	}
	defer r.forget(cl)
	return served(cl.Call(ctx, method, params, result))
}

// served makes an error the serving cluster returned read as the Cluster
// method's own ("replay: packet 3: ..."), without the cluster socket's
// method name in front ("cluster-replay: replay: ..."): a Remote's errors
// are those of the Cluster it stands for. Other errors (the socket's) are
// returned as they are.
func served(err error) error {
	var re *control.RemoteError
	if errors.As(err, &re) {
		return &servedError{re}
	}
	return err
}

// servedError is an error of the serving cluster's Cluster method.
type servedError struct{ re *control.RemoteError }

func (e *servedError) Error() string { return e.re.Message }

// Unwrap returns the remote error (its diagnostic files, its method).
func (e *servedError) Unwrap() error { return e.re }

func (r *Remote) forget(cl *control.Client) {
	cl.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.socks {
		if c == cl {
			r.socks = append(r.socks[:i], r.socks[i+1:]...)
			break
		}
	}
}

// Replay replays frames in the serving process (see Cluster.Replay).
func (r *Remote) Replay(ctx context.Context, frames []Frame, opts ReplayOptions) (journey.Report, error) {
	res, err := r.Trace(ctx, frames, opts)
	return res.Report, err
}

// Trace replays frames in the serving process and returns the replies'
// journeys too (see Cluster.Trace).
func (r *Remote) Trace(ctx context.Context, frames []Frame, opts ReplayOptions) (Result, error) {
	var res Result
	err := r.call(ctx, MethodReplay, ReplayRequest{Frames: frames, Options: opts}, &res)
	return res, err
}

// Run runs client actions from a pod.
func (r *Remote) Run(ctx context.Context, a nodeapi.ClientAction) (nodeapi.ClientResult, error) {
	var res nodeapi.ClientResult
	err := r.call(ctx, MethodRun, a, &res)
	return res, err
}

// Reset flushes CT and metrics everywhere.
func (r *Remote) Reset(ctx context.Context) error { return r.call(ctx, MethodReset, nil, nil) }

// Subscribe is Cluster.Subscribe for the served cluster; errors are
// returned by SubscribeContext only (here the stream is just empty).
func (r *Remote) Subscribe(fn func(Event)) (stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop, err := r.SubscribeContext(ctx, fn)
	if err != nil {
		return func() {}
	}
	return stop
}

// SubscribeContext streams the served cluster's observations to fn (on one
// goroutine, in order) until stop is called; it returns once they flow.
func (r *Remote) SubscribeContext(ctx context.Context, fn func(Event)) (stop func(), err error) {
	s := &subscriber{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	cl, err := r.dial(func(m *control.Message) {
		if m.Event != EventObservation {
			return
		}
		var e Event
		if control.Unmarshal(m.Data, &e) == nil {
			s.push(e)
		}
	})
	if err != nil {
		s.stop()
		return nil, err
	}
	if err := cl.Call(ctx, MethodSubscribe, nil, nil); err != nil {
		r.forget(cl)
		s.stop()
		return nil, served(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			r.forget(cl)
			s.stop()
		})
	}, nil
}

// Close detaches: the cluster keeps running in its process.
func (r *Remote) Close() error {
	r.mu.Lock()
	socks := r.socks
	r.socks = nil
	r.mu.Unlock()
	for _, c := range socks {
		c.Close()
	}
	for _, c := range r.ctls {
		c.Close()
	}
	return nil
}
