package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Defaults of Options.
const (
	// DefaultDialTimeout bounds connecting to a request's destination.
	DefaultDialTimeout = 3 * time.Second
	// DefaultIdleTimeout closes a client connection without a request
	// for this long.
	DefaultIdleTimeout = 2 * time.Minute
)

// Options configure a Proxy.
type Options struct {
	// Node names the node in records.
	Node string
	// Emit receives every record; it must not block (the agent queues).
	// nil drops them.
	Emit func(nodeapi.L7Event)
	// Listen opens the listener of a port; nil means ListenTransparent.
	Listen func(port uint16) (net.Listener, error)
	// Dial connects to a request's original destination; nil means a
	// plain TCP connection from the node.
	Dial func(ctx context.Context, dst netip.AddrPort) (net.Conn, error)
	// DialTimeout and IdleTimeout default to DefaultDialTimeout and
	// DefaultIdleTimeout.
	DialTimeout, IdleTimeout time.Duration
	// Logger receives errors; nil means slog.Default().
	Logger *slog.Logger
}

// Proxy is a node's L7 proxy. Its methods are safe for concurrent use.
type Proxy struct {
	opts   Options
	log    *slog.Logger
	policy atomic.Pointer[Policy]

	mu        sync.Mutex
	listeners map[uint16]net.Listener
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup

	metrics metrics
}

// New returns a proxy without listeners; Update gives it a policy and
// opens them.
func New(opts Options) *Proxy {
	if opts.Emit == nil {
		opts.Emit = func(nodeapi.L7Event) {}
	}
	if opts.Listen == nil {
		opts.Listen = ListenTransparent
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Dial == nil {
		timeout := opts.DialTimeout
		opts.Dial = func(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			return d.DialContext(ctx, "tcp4", dst.String())
		}
	}
	return &Proxy{opts: opts, log: opts.Logger.With("component", "l7-proxy"), listeners: map[uint16]net.Listener{},
		conns: map[net.Conn]struct{}{}}
}

// Update makes pol the policy (the next request of every connection is
// decided by it, those of open connections included) and listens on its
// ports, opening the new ones; listeners of ports it no longer has stay
// until Prune, so that flows the datapath still redirects there during a
// change find them. It returns the ports of pol.
func (p *Proxy) Update(pol *Policy) ([]uint16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("proxy closed")
	}
	want := pol.Ports()
	var opened []uint16
	for _, port := range want {
		if p.listeners[port] != nil {
			continue
		}
		ln, err := p.opts.Listen(port)
		if err != nil {
			for _, o := range opened {
				_ = p.listeners[o].Close()
				delete(p.listeners, o)
			}
			return nil, fmt.Errorf("listen on %d: %w", port, err)
		}
		p.listeners[port] = ln
		opened = append(opened, port)
	}
	p.policy.Store(pol)
	for _, port := range opened {
		p.wg.Add(1)
		go p.serve(port, p.listeners[port])
	}
	return want, nil
}

// Prune closes the listeners of ports the policy no longer has (their
// open connections stay) and returns those ports.
func (p *Proxy) Prune() []uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := p.policy.Load().Ports()
	var closed []uint16
	for port, ln := range p.listeners {
		if !slices.Contains(want, port) {
			_ = ln.Close()
			delete(p.listeners, port)
			closed = append(closed, port)
		}
	}
	slices.Sort(closed)
	return closed
}

// Ports returns the ports listened on, ascending.
func (p *Proxy) Ports() []uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]uint16, 0, len(p.listeners))
	for port := range p.listeners {
		out = append(out, port)
	}
	slices.Sort(out)
	return out
}

// Addr returns the address of port's listener (tests listen on port 0).
func (p *Proxy) Addr(port uint16) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ln := p.listeners[port]; ln != nil {
		return ln.Addr()
	}
	return nil
}

// Close closes the listeners and every connection and waits for their
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var errs []error
	for port, ln := range p.listeners {
		errs = append(errs, ln.Close())
		delete(p.listeners, port)
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return errors.Join(errs...)
}

func (p *Proxy) serve(port uint16, ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("accept", "port", port, "err", err)
			}
			return
		}
		if !p.track(c, true) {
			_ = c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.track(c, false)
			p.handle(port, c)
		}()
	}
}

// track adds (or removes) an open connection; it refuses new ones once
// the proxy is closed.
func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.conns, c)
		return true
	}
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}
