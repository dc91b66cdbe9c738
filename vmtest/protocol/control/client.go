package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrClosed is returned by calls on a [Client] whose connection ended.
var ErrClosed = errors.New("control connection closed")

// EventHandler receives an event read by a [Client]. It runs on the
// client's read goroutine and must not block.
type EventHandler func(m *Message)

// Client is the host side of the protocol: it sends requests, pairs
// responses with them and hands events to its handlers.
type Client struct {
	conn   *Conn
	closer io.Closer

	mu       sync.Mutex
	nextID   uint64
	pending  map[uint64]chan *Message
	handlers []EventHandler
	err      error

	done chan struct{}
}

// NewClient starts a client on rwc. Events read before a handler is added
// are passed to the handlers given here.
func NewClient(rwc io.ReadWriteCloser, handlers ...EventHandler) *Client {
	c := &Client{
		conn:     NewConn(rwc, rwc),
		closer:   rwc,
		pending:  make(map[uint64]chan *Message),
		handlers: handlers,
		done:     make(chan struct{}),
	}
	go c.readLoop()
	return c
}

// OnEvent adds a handler for events read from now on.
func (c *Client) OnEvent(h EventHandler) {
	c.mu.Lock()
	c.handlers = append(c.handlers, h)
	c.mu.Unlock()
}

func (c *Client) readLoop() {
	var err error
	for {
		var m *Message
		m, err = c.conn.Read()
		if err != nil {
			break
		}
		if m.IsEvent() {
			c.mu.Lock()
			hs := c.handlers
			c.mu.Unlock()
			for _, h := range hs {
				h(m)
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[m.ID]
		delete(c.pending, m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
	if errors.Is(err, io.EOF) {
		err = ErrClosed
	} else {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	c.mu.Lock()
	c.err = err
	c.pending = nil
	c.mu.Unlock()
	close(c.done)
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection; pending calls fail with [ErrClosed].
func (c *Client) Close() error {
	err := c.closer.Close()
	<-c.done
	return err
}

// Call sends a request for method with params and decodes the response's
// result into result (which may be nil). An error from the agent is a
// [*RemoteError]. Every error's text starts with the method's name
// ("bgp-peers: <cause>"); callers add their own context, not the method
// again.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	raw, err := Marshal(params)
	if err != nil {
		return fmt.Errorf("%s: encode params: %w", method, err)
	}
	ch := make(chan *Message, 1)
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", method, err)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	forget := func() {
		c.mu.Lock()
		if c.pending != nil {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}
	if err := c.conn.Write(&Message{ID: id, Method: method, Params: raw}); err != nil {
		forget()
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != "" {
			return &RemoteError{Method: method, Message: m.Error, Files: m.Files}
		}
		if err := Unmarshal(m.Result, result); err != nil {
			return fmt.Errorf("%s: decode result: %w", method, err)
		}
		return nil
	case <-c.done:
		return fmt.Errorf("%s: %w", method, c.Err())
	case <-ctx.Done():
		forget()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Ping checks that the agent answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.Call(ctx, MethodPing, nil, nil)
}

// Uname returns the guest's uname fields.
func (c *Client) Uname(ctx context.Context) (Uname, error) {
	var u Uname
	err := c.Call(ctx, MethodUname, nil, &u)
	return u, err
}

// Configure applies links, bonds, addresses, routes and sysctls.
func (c *Client) Configure(ctx context.Context, cfg Configure) error {
	return c.Call(ctx, MethodConfigure, cfg, nil)
}

// Exec runs a command in the guest.
func (c *Client) Exec(ctx context.Context, e Exec) (ExecResult, error) {
	var r ExecResult
	err := c.Call(ctx, MethodExec, e, &r)
	return r, err
}

// UDPListen binds UDP ports in the guest and starts counting datagrams.
func (c *Client) UDPListen(ctx context.Context, l UDPListen) (UDPListener, error) {
	var r UDPListener
	err := c.Call(ctx, MethodUDPListen, l, &r)
	return r, err
}

// UDPStats reads (and optionally waits for, or stops) a listener's counters.
func (c *Client) UDPStats(ctx context.Context, s UDPStats) (UDPCounters, error) {
	var r UDPCounters
	err := c.Call(ctx, MethodUDPStats, s, &r)
	return r, err
}

// UDPSend sends datagrams from the guest.
func (c *Client) UDPSend(ctx context.Context, s UDPSend) (UDPSent, error) {
	var r UDPSent
	err := c.Call(ctx, MethodUDPSend, s, &r)
	return r, err
}

// Poweroff asks the agent to power the VM off. The agent answers before it
// powers off.
func (c *Client) Poweroff(ctx context.Context) error {
	return c.Call(ctx, MethodPoweroff, nil, nil)
}

// Crash asks the agent to panic the guest kernel. The agent answers before
// it does; QEMU then exits (panic=-1, -no-reboot).
func (c *Client) Crash(ctx context.Context) error {
	return c.Call(ctx, MethodCrash, nil, nil)
}

// ReadFile returns the contents of a guest file.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	var b []byte
	err := c.Call(ctx, MethodReadFile, ReadFile{Path: path}, &b)
	return b, err
}
