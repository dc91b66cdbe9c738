package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// Handler serves one method: it decodes params and returns a value that is
// encoded as the response's result, or an error sent as its text.
type Handler func(ctx context.Context, params json.RawMessage) (any, error)

// Typed adapts a function with typed parameters and result to a [Handler].
// A role adds a method with
//
//	guest.Handle("bgp-peers", guest.Typed(func(ctx context.Context, p PeersParams) ([]Peer, error) { ... }))
func Typed[P, R any](f func(ctx context.Context, p P) (R, error)) Handler {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var p P
		if err := control.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("decode params: %w", err)
		}
		return f(ctx, p)
	}
}

// Agent is the guest side of the control protocol: a registry of methods
// and an event sender. The zero value is not usable; see [NewAgent].
type Agent struct {
	mu       sync.RWMutex
	handlers map[string]Handler
	conn     *control.Conn
	log      *slog.Logger
}

// NewAgent returns an agent serving the built-in methods (ping, uname,
// exec, configure, udp-*, poweroff).
func NewAgent(log *slog.Logger) *Agent {
	if log == nil {
		log = slog.Default()
	}
	a := &Agent{handlers: make(map[string]Handler), log: log}
	registerBuiltins(a)
	return a
}

// Default is the agent that [Handle] registers into and that [Main] runs.
var Default = NewAgent(nil)

// Handle registers h for method name on the [Default] agent. Roles call it
// from an init function or before [Main]; a later registration of the same
// name replaces the earlier one.
func Handle(name string, h Handler) { Default.Handle(name, h) }

// Emit sends an event on the [Default] agent's channel.
func Emit(event string, data any) error { return Default.Emit(event, data) }

// Handle registers h for method name.
func (a *Agent) Handle(name string, h Handler) {
	a.mu.Lock()
	a.handlers[name] = h
	a.mu.Unlock()
}

// Methods lists the registered method names, sorted.
func (a *Agent) Methods() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	names := make([]string, 0, len(a.handlers))
	for n := range a.handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrNotConnected is returned by [Agent.Emit] before [Agent.Serve] runs.
var ErrNotConnected = fmt.Errorf("agent not connected")

// Emit sends an event to the host.
func (a *Agent) Emit(event string, data any) error {
	a.mu.RLock()
	c := a.conn
	a.mu.RUnlock()
	if c == nil {
		return ErrNotConnected
	}
	raw, err := control.Marshal(data)
	if err != nil {
		return fmt.Errorf("emit %s: %w", event, err)
	}
	return c.Write(&control.Message{Event: event, Data: raw})
}

// Attach sets the connection events are sent on, so that events can be
// sent before [Agent.Serve] runs.
func (a *Agent) Attach(c *control.Conn) {
	a.mu.Lock()
	a.conn = c
	a.mu.Unlock()
}

// Serve reads requests from c until it fails or ctx ends, running each
// request in its own goroutine.
func (a *Agent) Serve(ctx context.Context, c *control.Conn) error {
	a.Attach(c)
	for {
		m, err := c.Read()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("serve: %w", err)
		}
		if !m.IsRequest() {
			continue
		}
		go a.dispatch(ctx, c, m)
	}
}

func (a *Agent) dispatch(ctx context.Context, c *control.Conn, m *control.Message) {
	a.mu.RLock()
	h := a.handlers[m.Method]
	a.mu.RUnlock()
	resp := &control.Message{ID: m.ID}
	if h == nil {
		// The host's error names the method already.
		resp.Error = control.ErrUnknownMethod.Error()
	} else {
		res, err := h(ctx, m.Params)
		if err == nil {
			resp.Result, err = control.Marshal(res)
		}
		if err != nil {
			resp.Error = err.Error()
			resp.Files = control.DiagnosticFiles(err)
			a.log.Debug("request failed", "method", m.Method, "err", err)
		}
	}
	if err := c.Write(resp); err != nil {
		a.log.Warn("write response", "method", m.Method, "err", err)
	}
}
