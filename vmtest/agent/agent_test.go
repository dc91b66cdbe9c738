package agent

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

func startAgent(t *testing.T) (*Agent, *control.Client) {
	t.Helper()
	a := NewAgent(nil)
	host, guest := net.Pipe()
	go a.Serve(context.Background(), control.NewConn(guest, guest))
	cl := control.NewClient(host)
	t.Cleanup(func() { cl.Close(); guest.Close() })
	return a, cl
}

func TestAgentBuiltinsAndRegistry(t *testing.T) {
	a, cl := startAgent(t)
	ctx := context.Background()
	if err := cl.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := cl.Uname(ctx)
	if err != nil || u.Sysname != "Linux" || u.Release == "" {
		t.Fatalf("uname %+v %v", u, err)
	}
	type in struct{ N int }
	type out struct{ Double int }
	a.Handle("double", Typed(func(_ context.Context, p in) (out, error) {
		if p.N < 0 {
			return out{}, errors.New("negative")
		}
		return out{p.N * 2}, nil
	}))
	var o out
	if err := cl.Call(ctx, "double", in{21}, &o); err != nil || o.Double != 42 {
		t.Fatalf("double = %+v, %v", o, err)
	}
	if err := cl.Call(ctx, "double", in{-1}, &o); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("error not passed: %v", err)
	}
	if err := cl.Call(ctx, "nope", nil, nil); !errors.Is(err, control.ErrUnknownMethod) {
		t.Fatalf("unknown = %v", err)
	}
	found := false
	for _, m := range a.Methods() {
		found = found || m == "double"
	}
	if !found {
		t.Fatal("Methods misses double")
	}
}

func TestAgentEmit(t *testing.T) {
	a := NewAgent(nil)
	if err := a.Emit("x", nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Emit before connect = %v", err)
	}
	host, guest := net.Pipe()
	defer host.Close()
	go a.Serve(context.Background(), control.NewConn(guest, guest))
	got := make(chan *control.Message, 1)
	cl := control.NewClient(host, func(m *control.Message) { got <- m })
	defer cl.Close()
	if err := cl.Ping(context.Background()); err != nil { // Serve attached
		t.Fatal(err)
	}
	if err := a.Emit("trace", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Event != "trace" || string(m.Data) != `{"n":1}` {
			t.Fatalf("event %+v", m)
		}
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
}

func TestAgentExec(t *testing.T) {
	_, cl := startAgent(t)
	r, err := cl.Exec(context.Background(), control.Exec{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 3 || string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" {
		t.Fatalf("exec = %+v", r)
	}
	if _, err := cl.Exec(context.Background(), control.Exec{Argv: []string{"/nonexistent"}}); err == nil {
		t.Fatal("exec of a missing binary succeeded")
	}
}

func TestAgentUDPOnLoopback(t *testing.T) {
	_, cl := startAgent(t)
	ctx := context.Background()
	ports := []int{47011, 47012}
	l, err := cl.UDPListen(ctx, control.UDPListen{Address: "127.0.0.1", Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.UDPSend(ctx, control.UDPSend{Flows: []control.UDPFlow{{Dst: "127.0.0.1:47011"}, {Dst: "127.0.0.1:47012"}}, Count: 20})
	if err != nil || s.Sent != 40 {
		t.Fatalf("send %+v %v", s, err)
	}
	c, err := cl.UDPStats(ctx, control.UDPStats{ID: l.ID, WaitTotal: 40, Timeout: 2 * time.Second, Stop: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 40 || c.PerPort[47011] != 20 || c.PerPort[47012] != 20 || c.MaxSeqGap != 0 {
		t.Fatalf("counters %+v", c)
	}
	if _, err := cl.UDPStats(ctx, control.UDPStats{ID: l.ID}); err == nil {
		t.Fatal("stopped listener still answers")
	}
}

func TestReadModuleOrder(t *testing.T) {
	dir := t.TempDir()
	order := "# load order\nvirtio\nvirtio_ring\n\nbonding max_bonds=0 miimon=10\nsub/x.ko.xz\n"
	if err := os.WriteFile(filepath.Join(dir, "hoplab.order"), []byte(order), 0o644); err != nil {
		t.Fatal(err)
	}
	mods, err := ReadModuleOrder(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Module{
		{Path: filepath.Join(dir, "virtio.ko")},
		{Path: filepath.Join(dir, "virtio_ring.ko")},
		{Path: filepath.Join(dir, "bonding.ko"), Params: "max_bonds=0 miimon=10"},
		{Path: filepath.Join(dir, "sub/x.ko.xz")},
	}
	if len(mods) != len(want) {
		t.Fatalf("mods %+v", mods)
	}
	for i := range want {
		if mods[i] != want[i] {
			t.Errorf("mod %d = %+v, want %+v", i, mods[i], want[i])
		}
	}
	if mods[3].Name() != "x" || mods[2].Name() != "bonding" {
		t.Errorf("names %q %q", mods[3].Name(), mods[2].Name())
	}
}

func TestReadModuleOrderWithoutFile(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.ko", "b.ko.xz", "readme"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	mods, err := ReadModuleOrder(dir)
	if err != nil || len(mods) != 2 {
		t.Fatalf("mods %+v %v", mods, err)
	}
	if mods, err := ReadModuleOrder(filepath.Join(dir, "missing")); err != nil || len(mods) != 0 {
		t.Fatalf("missing dir: %+v %v", mods, err)
	}
}

func TestStripSignature(t *testing.T) {
	body := []byte("\x7fELF module body")
	sig := []byte("PKCS7-signature-bytes")
	desc := make([]byte, 12)
	desc[11] = byte(len(sig))
	signed := append(append(append(append([]byte{}, body...), sig...), desc...), moduleSigMagic...)
	got, ok := StripSignature(signed)
	if !ok || string(got) != string(body) {
		t.Fatalf("StripSignature = %q, %v", got, ok)
	}
	if got, ok := StripSignature(body); ok || string(got) != string(body) {
		t.Fatalf("unsigned module changed: %q, %v", got, ok)
	}
	bad := append([]byte{1, 2, 3}, moduleSigMagic...)
	if _, ok := StripSignature(bad); ok {
		t.Fatal("truncated descriptor accepted")
	}
	desc[11] = 200 // longer than the file
	if _, ok := StripSignature(append(append([]byte("x"), desc...), moduleSigMagic...)); ok {
		t.Fatal("oversized signature length accepted")
	}
}

// The memory limit is memoryShare of MemAvailable; a meminfo without it
// is an error naming the file.
func TestSetMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "meminfo")
	if err := os.WriteFile(good, []byte("MemTotal:         238044 kB\nMemFree:          150000 kB\nMemAvailable:     200000 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	limit, err := setMemoryLimit(good)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(200000 << 10 / 2); limit != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("limit %d (runtime %d), want %d", limit, debug.SetMemoryLimit(-1), want)
	}
	bad := filepath.Join(dir, "short")
	if err := os.WriteFile(bad, []byte("MemTotal: 1 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := setMemoryLimit(bad); err == nil || err.Error() != bad+": no MemAvailable" {
		t.Errorf("meminfo without MemAvailable: %v", err)
	}
}
