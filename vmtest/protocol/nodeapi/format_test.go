package nodeapi

import (
	"bytes"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hoplab/hoplab/bgp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The rows of the reference journey after pod1 fetched Service
// 10.224.1.1:80 from pod4:8080, as node1 and node2 dump them.
var (
	ctRows = []CTRow{
		{Tuple: "TCP IN 10.1.1.10:40002 -> 10.1.2.40:8081", Proto: "TCP", Direction: "IN",
			Src: netip.MustParseAddrPort("10.1.1.10:40002"), Dst: netip.MustParseAddrPort("10.1.2.40:8081"),
			Expires: 21598, TxPackets: 4, TxBytes: 300, TxFlagsSeen: 0x1a, Flags: "seen_non_syn", SrcIdentity: 38586, ProxyPort: 8081},
		{Tuple: "TCP OUT 10.1.1.10:40000 -> 10.1.2.40:8080", Proto: "TCP", Direction: "OUT",
			Src: netip.MustParseAddrPort("10.1.1.10:40000"), Dst: netip.MustParseAddrPort("10.1.2.40:8080"),
			Expires: 21593, TxPackets: 6, TxBytes: 424, RxPackets: 5, RxBytes: 446, TxFlagsSeen: 0x1b, RxFlagsSeen: 0x1b,
			Flags: "rx_closing tx_closing seen_non_syn", RevNAT: 1, RevNATAddr: "10.224.1.1:80", BackendID: 1, SrcIdentity: 38586},
		{Tuple: "TCP SVC 10.1.1.10:40000 -> 10.224.1.1:80", Proto: "TCP", Direction: "SERVICE",
			Src: netip.MustParseAddrPort("10.1.1.10:40000"), Dst: netip.MustParseAddrPort("10.224.1.1:80"),
			Expires: 21593, Flags: "service", RevNAT: 1, RevNATAddr: "10.224.1.1:80", BackendID: 1},
	}
	lbRows = []ServiceRow{
		{Frontend: "10.224.1.1:80/TCP", ID: 1, Backends: []BackendRow{{ID: 1, Address: "10.1.2.40:8080", Pod: "pod4"}}},
		{Frontend: "10.224.1.9:80/TCP", ID: 2, Backends: []BackendRow{}},
		{Frontend: "10.255.1.11:30080/TCP", ID: 3, NodePort: true, Backends: []BackendRow{{ID: 1, Address: "10.1.2.40:8080", Pod: "pod4"}}},
	}
	natRows = []NATRow{
		{Entry: "TCP IN 10.1.2.40:8080 -> 10.255.1.11:40000 XLATE_DST 192.0.2.50:40000 Created=12"},
		{Entry: "TCP OUT 192.0.2.50:40000 -> 10.1.2.40:8080 XLATE_SRC 10.255.1.11:40000 Created=12"},
	}
	endpointRows = []EndpointRow{
		{ID: 2713, Pod: "pod4", IP: "10.1.2.40", Identity: 19216, Labels: "app=backend", Device: "lxc35598c", IfIndex: 7,
			LXCMAC: "0e:b6:f2:73:c5:89", PodMAC: "0a:86:f4:ea:d5:80", IngressEnforce: true},
	}
	policyRows = []PolicyRow{
		{Direction: "Ingress", Identity: 38586, Port: 8080, Proto: "TCP", Level: "L3L4", Packets: 6, Bytes: 424},
		{Direction: "Ingress", Identity: 27866, Port: 8081, Proto: "TCP", Level: "L3L4", ProxyPort: 8081, Packets: 2, Bytes: 148},
		{Direction: "Ingress", Identity: 0, Port: 9090, Proto: "TCP", Level: "L4-only"},
		{Direction: "Ingress", Identity: 38586, Proto: "ANY", Level: "L3-only"},
		{Direction: "Egress", Proto: "ANY", Level: "allow-all"},
	}
	ipcacheRows = []IPCacheRow{
		{Prefix: "0.0.0.0/0", Identity: 2},
		{Prefix: "10.1.1.10/32", Identity: 38586},
		{Prefix: "10.255.2.12/32", Identity: 6, Tunnel: "10.255.2.12"},
	}
	metricRows = []MetricRow{
		{Reason: "Forwarded", Code: 0, Direction: "INGRESS", Packets: 10, Bytes: 935},
		{Reason: "Forwarded", Code: 0, Direction: "EGRESS", Packets: 11, Bytes: 1009},
		{Reason: "Policy denied", Code: 133, Direction: "INGRESS", Packets: 1, Bytes: 74},
		{Reason: "L7 denied", Direction: "INGRESS", Packets: 2, L7: true, Verdict: L7Dropped, Status: 403},
		{Reason: "L7 forwarded", Direction: "INGRESS", Packets: 5, L7: true, Verdict: L7Forwarded, Status: 200},
		{Reason: "L7 error", Direction: "EGRESS", Packets: 1, L7: true, Verdict: L7Error, Status: 502},
	}
	peers = bgp.PeerList{
		{Address: netip.MustParseAddr("10.255.1.11"), ASN: 65001, LocalASN: 65000, RouterID: netip.MustParseAddr("10.255.1.11"),
			State: bgp.StateEstablished, Uptime: 61 * time.Second, Received: 1, Accepted: 1, Advertised: 1},
		{Address: netip.MustParseAddr("10.255.2.12"), ASN: 65002, LocalASN: 65000, State: bgp.StateActive},
	}
	routes = bgp.RouteList{
		{Prefix: netip.MustParsePrefix("10.1.1.0/24"), NextHop: netip.MustParseAddr("10.255.1.11"), ASPath: []uint32{65001},
			Best: true, Peer: netip.MustParseAddr("10.255.1.11"), Age: 60 * time.Second, Installed: true},
		{Prefix: netip.MustParsePrefix("10.1.2.0/24"), NextHop: netip.MustParseAddr("10.255.2.12"), ASPath: []uint32{65002},
			Best: true, Peer: netip.MustParseAddr("10.255.2.12"), Age: 59 * time.Second, Installed: true},
	}
	tcRows = []TCFilterRow{
		{Device: "bond0", Hook: TCIngress, Program: "from-netdev", ID: 41, Tag: "4d0e3b7a1c9f2e68"},
		{Device: "bond0", Hook: TCEgress, Program: "to-netdev", ID: 42, Tag: "b15a0c2e9d73f146"},
		{Device: "lxc35598c", Hook: TCIngress, Program: "from-container", ID: 37, Tag: "8e2f61d04ab9c735"},
	}
	kernelRoutes = []KernelRoute{
		{Dst: "10.1.1.10/32", Device: "lxc7485d3", Protocol: "boot"},
		{Dst: "10.1.2.0/24", Gateway: "10.255.1.1", Device: "bond0", Protocol: "bgp"},
		{Dst: "default", Gateway: "10.255.1.1", Device: "bond0", Protocol: "boot"},
	}
)

func TestFormatGolden(t *testing.T) {
	for name, render := range map[string]func(io.Writer) error{
		"ct":            func(w io.Writer) error { return FormatCT(w, ctRows) },
		"lb":            func(w io.Writer) error { return FormatLB(w, lbRows) },
		"nat":           func(w io.Writer) error { return FormatNAT(w, natRows) },
		"endpoints":     func(w io.Writer) error { return FormatEndpoints(w, endpointRows) },
		"policy":        func(w io.Writer) error { return FormatPolicy(w, policyRows) },
		"ipcache":       func(w io.Writer) error { return FormatIPCache(w, ipcacheRows) },
		"metrics":       func(w io.Writer) error { return FormatMetrics(w, metricRows) },
		"bgp-peers":     func(w io.Writer) error { return FormatBGPPeers(w, peers) },
		"bgp-routes":    func(w io.Writer) error { return FormatBGPRoutes(w, routes) },
		"kernel-routes": func(w io.Writer) error { return FormatKernelRoutes(w, kernelRoutes) },
		"tc":            func(w io.Writer) error { return FormatTC(w, tcRows) },
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := render(&buf); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from %s:\n%s\nwant:\n%s", name, path, buf.Bytes(), want)
			}
		})
	}
}

// TestFormatEmpty: empty dumps give the header only (tables) or nothing.
func TestFormatEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := FormatCT(&buf, nil); err != nil || buf.Len() != 0 {
		t.Errorf("empty CT: %q %v", buf.String(), err)
	}
	buf.Reset()
	if err := FormatMetrics(&buf, nil); err != nil || buf.String() != "REASON  DIRECTION  PACKETS  BYTES\n" {
		t.Errorf("empty metrics: %q %v", buf.String(), err)
	}
	buf.Reset()
	if err := FormatTC(&buf, nil); err != nil || buf.String() != "DEVICE  HOOK  PROGRAM  ID  TAG\n" {
		t.Errorf("empty tc: %q %v", buf.String(), err)
	}
}
