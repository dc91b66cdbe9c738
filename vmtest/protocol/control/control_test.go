package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestConnRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf, &buf)
	params, _ := Marshal(Exec{Argv: []string{"uname", "-r"}})
	if err := c.Write(&Message{ID: 7, Method: MethodExec, Params: params}); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(&Message{Event: EventReady, Data: []byte(`{"release":"6.1.0"}`)}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	var e Exec
	if err := Unmarshal(m.Params, &e); err != nil || !m.IsRequest() || m.ID != 7 || strings.Join(e.Argv, " ") != "uname -r" {
		t.Fatalf("request %+v %+v %v", m, e, err)
	}
	m, err = c.Read()
	if err != nil {
		t.Fatal(err)
	}
	var r Ready
	if err := Unmarshal(m.Data, &r); err != nil || !m.IsEvent() || r.Release != "6.1.0" {
		t.Fatalf("event %+v %+v %v", m, r, err)
	}
	if _, err := c.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("Read at end = %v, want EOF", err)
	}
}

func TestConnSkipsNoise(t *testing.T) {
	in := "garbage before the agent\n{not json\n" + `{"event":"ready"}` + "\n"
	c := NewConn(strings.NewReader(in), io.Discard)
	m, err := c.Read()
	if err != nil || m.Event != EventReady {
		t.Fatalf("Read = %+v, %v", m, err)
	}
}

func TestConnLongLine(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf, &buf)
	big := ExecResult{Stdout: bytes.Repeat([]byte("x"), 300<<10)}
	raw, _ := Marshal(big)
	if err := c.Write(&Message{ID: 1, Result: raw}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	var got ExecResult
	if err := Unmarshal(m.Result, &got); err != nil || len(got.Stdout) != len(big.Stdout) {
		t.Fatalf("got %d bytes, %v", len(got.Stdout), err)
	}
}

// fakeAgent answers requests on c: ping succeeds, anything else is unknown;
// it sends a log event first.
func fakeAgent(t *testing.T, rw io.ReadWriter) {
	c := NewConn(rw, rw)
	_ = c.Write(&Message{Event: EventLog, Data: []byte(`{"level":"INFO","msg":"hi"}`)})
	for {
		m, err := c.Read()
		if err != nil {
			return
		}
		resp := &Message{ID: m.ID}
		switch m.Method {
		case MethodPing:
		case MethodUname:
			resp.Result, _ = Marshal(Uname{Release: "6.1.0-test"})
		case "hang":
			continue
		case "node-setup":
			resp.Error = "load bpf_lxc: program p: verifier: nope"
			resp.Files = map[string]string{"verifier-p.log": "0: (b7) r0 = 0\nnope\n"}
		default:
			resp.Error = ErrUnknownMethod.Error()
		}
		_ = c.Write(resp)
	}
}

func TestClientCalls(t *testing.T) {
	host, guest := net.Pipe()
	go fakeAgent(t, guest)
	events := make(chan *Message, 1)
	cl := NewClient(host, func(m *Message) { events <- m })
	defer cl.Close()
	ctx := context.Background()
	if err := cl.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := cl.Uname(ctx)
	if err != nil || u.Release != "6.1.0-test" {
		t.Fatalf("Uname = %+v, %v", u, err)
	}
	err = cl.Call(ctx, "bgp-peers", nil, nil)
	var re *RemoteError
	if !errors.As(err, &re) || !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("unknown method error = %v", err)
	}
	if got, want := err.Error(), "bgp-peers: unknown method"; got != want {
		t.Fatalf("error text %q, want %q (the method named once)", got, want)
	}
	select {
	case m := <-events:
		if m.Event != EventLog {
			t.Fatalf("event %+v", m)
		}
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := cl.Call(tctx, "hang", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging call = %v", err)
	} else if got, want := err.Error(), "hang: "+context.DeadlineExceeded.Error(); got != want {
		t.Fatalf("hanging call's error text %q, want %q", got, want)
	}
	guest.Close()
	<-cl.Done()
	if err := cl.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after close = %v", err)
	}
}

// TestRemoteErrorNamesMethodOnce: the method prefixes the agent's message
// once, also when a relay passed on an error that names it already.
func TestRemoteErrorNamesMethodOnce(t *testing.T) {
	for _, c := range []struct {
		e    RemoteError
		want string
	}{
		{RemoteError{Method: "bgp-peers", Message: "speaker not running"}, "bgp-peers: speaker not running"},
		{RemoteError{Method: "bgp-peers", Message: "bgp-peers: control connection closed"}, "bgp-peers: control connection closed"},
		{RemoteError{Method: "bgp-peers", Message: "bgp-peersX: y"}, "bgp-peers: bgp-peersX: y"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
}

// The files of a failed response reach the caller's RemoteError, and
// DiagnosticFiles finds them through wrapping and errors.Join.
func TestRemoteErrorCarriesFiles(t *testing.T) {
	host, guest := net.Pipe()
	go fakeAgent(t, guest)
	cl := NewClient(host)
	defer cl.Close()
	err := cl.Call(context.Background(), "node-setup", nil, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Files["verifier-p.log"] != "0: (b7) r0 = 0\nnope\n" {
		t.Fatalf("err = %v, files %v", err, re)
	}
	joined := errors.Join(errors.New("router setup: fine"), fmt.Errorf("node setup: %w", err))
	files := DiagnosticFiles(joined)
	if len(files) != 1 || files["verifier-p.log"] == "" {
		t.Errorf("DiagnosticFiles(joined) = %v", files)
	}
	if files := DiagnosticFiles(errors.New("plain")); files != nil {
		t.Errorf("DiagnosticFiles(plain) = %v, want nil", files)
	}
}
