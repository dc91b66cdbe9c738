package bgp

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

func TestTablesRender(t *testing.T) {
	peers := PeerList{{Address: mustAddr("10.255.1.11"), ASN: 65001, LocalASN: 65000, RouterID: mustAddr("10.255.1.11"),
		State: StateEstablished, Uptime: 75 * time.Second, Received: 1, Accepted: 1, Advertised: 1},
		{Address: mustAddr("10.255.2.12"), ASN: 65002, LocalASN: 65000, State: StateActive}}
	got := peers.String()
	want := "" +
		"Peer         AS     Local AS  State        Uptime  Router ID    Received  Accepted  Advertised\n" +
		"10.255.1.11  65001  65000     Established  1m15s   10.255.1.11  1         1         1\n" +
		"10.255.2.12  65002  65000     Active       -       -            0         0         0\n"
	if got != want {
		t.Errorf("peers table:\n%s\nwant:\n%s", got, want)
	}
	routes := RouteList{
		{Prefix: mustPrefix("10.1.1.0/24"), NextHop: mustAddr("10.255.1.1"), ASPath: []uint32{65000, 65001},
			Best: true, Peer: mustAddr("10.255.1.1"), Age: 3 * time.Second, Installed: true},
		{Prefix: mustPrefix("10.1.2.0/24"), NextHop: mustAddr("10.255.2.12"), Best: true, Local: true},
	}
	got = routes.String()
	want = "" +
		"    Prefix       NextHop      AS Path      From        Age  Kernel\n" +
		"*>  10.1.1.0/24  10.255.1.1   65000 65001  10.255.1.1  3s   installed\n" +
		"*>  10.1.2.0/24  10.255.2.12  -            local       0s   -\n"
	if got != want {
		t.Errorf("routes table:\n%s\nwant:\n%s", got, want)
	}
	if s := routes[0].String(); s != "10.1.1.0/24 via 10.255.1.1 [65000 65001] from 10.255.1.1 best" {
		t.Errorf("route line %q", s)
	}
}

func TestStatusJSON(t *testing.T) {
	b, err := json.Marshal(PeerStatus{Address: mustAddr("10.255.1.11"), ASN: 65001, State: StateEstablished})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"state":"Established"`) || !strings.Contains(string(b), `"address":"10.255.1.11"`) {
		t.Errorf("peer JSON %s", b)
	}
	var back PeerStatus
	if err := json.Unmarshal(b, &back); err != nil || back.State != StateEstablished || back.Address != mustAddr("10.255.1.11") {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	var st State
	if err := st.UnmarshalText([]byte("Bogus")); err == nil {
		t.Error("unknown state name accepted")
	}
}

func TestGoBGPLogsGoToSlog(t *testing.T) {
	var buf bytes.Buffer
	a := slogAdapter{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if a.GetLevel() != gobgplog.InfoLevel {
		t.Errorf("level %v, want info", a.GetLevel())
	}
	a.Debug("hidden", nil)
	a.Info("Peer Up", gobgplog.Fields{"Topic": "Peer", "Key": "10.255.1.11"})
	a.Fatal("not fatal here", nil) // logged, never exits
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Errorf("debug message logged at info level: %s", out)
	}
	if !strings.Contains(out, `level=INFO msg="Peer Up" Key=10.255.1.11 Topic=Peer`) {
		t.Errorf("info line missing or unsorted: %s", out)
	}
	if !strings.Contains(out, `level=ERROR msg="not fatal here"`) {
		t.Errorf("fatal not logged as error: %s", out)
	}
}
