// Package control defines the protocol between the hoplab harness on the
// host and the guest agent inside a VM, spoken over a virtio-serial port.
//
// The wire format is JSON lines: every line is one [Message]. A message is
// a request (ID and Method set), a response (ID set, Result or Error set) or
// an event (Event set, no ID). Requests may be answered out of order; the
// agent serves each request concurrently.
//
// The typed parameters and results of the built-in methods live in this
// package so that host and guest share one definition. Roles that extend the
// agent (pods, datapath, BGP) define their own types in their own packages
// and use [Conn] and the method registry of package agent unchanged.
package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// PortName is the virtio-serial port name the agent looks for in
// /sys/class/virtio-ports/*/name.
const PortName = "hoplab.ctl"

// MaxLine is the largest message, in bytes, that a [Conn] accepts.
const MaxLine = 64 << 20

// Built-in methods served by every agent.
const (
	// MethodPing answers with nothing.
	MethodPing = "ping"
	// MethodUname returns [Uname].
	MethodUname = "uname"
	// MethodConfigure applies [Configure].
	MethodConfigure = "configure"
	// MethodExec runs [Exec] and returns [ExecResult].
	MethodExec = "exec"
	// MethodUDPListen binds [UDPListen] and returns [UDPListener].
	MethodUDPListen = "udp-listen"
	// MethodUDPStats reads a listener with [UDPStats] and returns [UDPCounters].
	MethodUDPStats = "udp-stats"
	// MethodUDPSend sends [UDPSend] and returns [UDPSent].
	MethodUDPSend = "udp-send"
	// MethodPoweroff answers, then powers the VM off.
	MethodPoweroff = "poweroff"
	// MethodReadFile returns the contents of [ReadFile]'s path.
	MethodReadFile = "read-file"
	// MethodCrash answers, then panics the guest kernel (sysrq c): fault
	// tests of what a guest panic looks like from the host.
	MethodCrash = "crash"
)

// Events sent by every agent.
const (
	// EventReady is sent once the agent serves requests; data is [Ready].
	EventReady = "ready"
	// EventLog carries a log record of the agent; data is [Log].
	EventLog = "log"
	// EventFatal is sent before the agent powers the VM off because of an
	// error it cannot recover from; data is [Fatal].
	EventFatal = "fatal"
)

// Message is one line of the protocol.
type Message struct {
	// ID pairs a request with its response; zero for events.
	ID uint64 `json:"id,omitempty"`
	// Method names the request.
	Method string `json:"method,omitempty"`
	// Params holds the request's parameters.
	Params json.RawMessage `json:"params,omitempty"`
	// Result holds a successful response's value.
	Result json.RawMessage `json:"result,omitempty"`
	// Error is the text of a failed response.
	Error string `json:"error,omitempty"`
	// Files are diagnostics that come with a failed response, by file
	// name (a verifier log per rejected program); the host keeps them
	// with the run's artifacts.
	Files map[string]string `json:"files,omitempty"`
	// Event names an event.
	Event string `json:"event,omitempty"`
	// Data holds the event's payload.
	Data json.RawMessage `json:"data,omitempty"`
}

// IsRequest reports whether m is a request.
func (m *Message) IsRequest() bool { return m.Method != "" }

// IsEvent reports whether m is an event.
func (m *Message) IsEvent() bool { return m.Event != "" }

// ErrUnknownMethod is the error text prefix of a response to a method the
// agent does not serve.
var ErrUnknownMethod = errors.New("unknown method")

// RemoteError is an error returned by the agent for one request.
type RemoteError struct {
	// Method is the request's method.
	Method string
	// Message is the agent's error text.
	Message string
	// Files are the diagnostics that came with the error (see
	// [Message.Files]).
	Files map[string]string
}

// Diagnostic is an error that carries files worth keeping with the
// artifacts (see [Message.Files]).
type Diagnostic interface {
	error
	DiagnosticFiles() map[string]string
}

// DiagnosticFiles collects the files of every [Diagnostic] and
// [RemoteError] in err's tree (errors.Join included); nil when none.
func DiagnosticFiles(err error) map[string]string {
	var out map[string]string
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		var files map[string]string
		switch e := err.(type) {
		case *RemoteError:
			files = e.Files
		case Diagnostic:
			files = e.DiagnosticFiles()
		}
		for name, text := range files {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = text
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// Error implements error: "method: message". It is the only place that
// names the method of a failed request, so layers above add only their
// own context (the VM's name). A message that starts with the method
// already (a relay passing on a Client's error) is not prefixed again.
func (e *RemoteError) Error() string {
	if strings.HasPrefix(e.Message, e.Method+": ") {
		return e.Message
	}
	return fmt.Sprintf("%s: %s", e.Method, e.Message)
}

// Is makes errors.Is(err, ErrUnknownMethod) true for unknown methods.
func (e *RemoteError) Is(target error) bool {
	return target == ErrUnknownMethod && len(e.Message) >= len(ErrUnknownMethod.Error()) &&
		e.Message[:len(ErrUnknownMethod.Error())] == ErrUnknownMethod.Error()
}

// Conn reads and writes messages on a byte stream. Writes are safe for
// concurrent use; reads must come from one goroutine.
type Conn struct {
	r   *bufio.Reader
	wmu sync.Mutex
	w   io.Writer
}

// NewConn returns a Conn reading from r and writing to w.
func NewConn(r io.Reader, w io.Writer) *Conn {
	return &Conn{r: bufio.NewReaderSize(r, 64<<10), w: w}
}

// Read returns the next message. Lines that are not JSON objects (noise on
// the port before the peer started) are skipped.
func (c *Conn) Read() (*Message, error) {
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m Message
		if err := json.Unmarshal(line, &m); err != nil {
			continue
		}
		return &m, nil
	}
}

func (c *Conn) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxLine {
			return nil, fmt.Errorf("read message: line longer than %d bytes", MaxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				return buf, nil
			}
			return nil, err
		}
		return buf[:len(buf)-1], nil
	}
}

// Write sends one message.
func (c *Conn) Write(m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	b = append(b, '\n')
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.w.Write(b); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}

// Marshal encodes v for a Params, Result or Data field; nil stays empty.
func Marshal(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(v)
}

// Unmarshal decodes a Params, Result or Data field into v; an empty field
// leaves v unchanged, and a nil v ignores the field.
func Unmarshal(raw json.RawMessage, v any) error {
	if v == nil || len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, v)
}
