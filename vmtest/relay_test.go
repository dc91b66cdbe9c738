package vmtest

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/hoplab/hoplab/vmtest/agent"
	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// fakeVM is a VM whose agent is an in-process guest agent on a pipe.
func fakeVM(t *testing.T) *VM {
	t.Helper()
	host, g := net.Pipe()
	go agent.NewAgent(nil).Serve(context.Background(), control.NewConn(g, g))
	vm := &VM{opts: &Options{Name: "fake"}, agent: control.NewClient(host), exited: make(chan struct{})}
	t.Cleanup(func() { vm.agent.Close(); g.Close() })
	return vm
}

func TestRelayPassesRequests(t *testing.T) {
	vm := fakeVM(t)
	path := filepath.Join(t.TempDir(), "fake.ctl")
	r, err := vm.ServeControl(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cl, err := DialControl(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := cl.Uname(ctx)
	if err != nil || u.Sysname != "Linux" {
		t.Fatalf("uname through the relay = %+v, %v", u, err)
	}
	res, err := cl.Exec(ctx, control.Exec{Argv: []string{"sh", "-c", "echo relayed"}})
	if err != nil || string(res.Stdout) != "relayed\n" {
		t.Fatalf("exec through the relay = %+v, %v", res, err)
	}
	if err := cl.Call(ctx, "nope", nil, nil); !errors.Is(err, control.ErrUnknownMethod) {
		t.Fatalf("unknown method through the relay = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := DialControl(path); err == nil {
		t.Fatal("relay socket still answers after Close")
	}
}
