package nodeapi

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hoplab/hoplab/bgp"
)

// The Format functions render dump rows as text in the spirit of the
// Cilium CLI commands named in each doc comment, for the hoplab CLI.

// tableWriter aligns tab-separated cells and trims trailing blanks.
type tableWriter struct {
	*tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func table(w io.Writer) *tableWriter {
	t := &tableWriter{out: w}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 4, 2, ' ', 0)
	return t
}

// Flush writes the aligned table.
func (t *tableWriter) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	var out bytes.Buffer
	for line := range strings.Lines(t.buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := t.out.Write(out.Bytes())
	return err
}

// FormatCT writes CT rows like `cilium bpf ct list global`: one line per
// entry with its tuple, expiry, counters, flags, rev-NAT and identity.
func FormatCT(w io.Writer, rows []CTRow) error {
	for _, r := range rows {
		flags := "[ ]"
		if r.Flags != "" {
			flags = "[ " + r.Flags + " ]"
		}
		revnat := fmt.Sprint(r.RevNAT)
		if r.RevNATAddr != "" {
			revnat += " (" + r.RevNATAddr + ")"
		}
		proxy := ""
		if r.ProxyPort != 0 {
			proxy = fmt.Sprintf(" ProxyPort=%d", r.ProxyPort)
		}
		if _, err := fmt.Fprintf(w, "%s expires=%d RxPackets=%d RxBytes=%d RxFlagsSeen=%#02x TxPackets=%d TxBytes=%d TxFlagsSeen=%#02x Flags=%s RevNAT=%s SourceSecurityID=%d BackEndID=%d%s\n",
			r.Tuple, r.Expires, r.RxPackets, r.RxBytes, r.RxFlagsSeen, r.TxPackets, r.TxBytes, r.TxFlagsSeen,
			flags, revnat, r.SrcIdentity, r.BackendID, proxy); err != nil {
			return err
		}
	}
	return nil
}

// FormatNAT writes SNAT entries like `cilium bpf nat list`, one per line.
func FormatNAT(w io.Writer, rows []NATRow) error {
	for _, r := range rows {
		if _, err := fmt.Fprintln(w, r.Entry); err != nil {
			return err
		}
	}
	return nil
}

// FormatLB writes services like `cilium bpf lb list`: the frontend with its
// rev-NAT id and slot 0, then one line per backend slot.
func FormatLB(w io.Writer, rows []ServiceRow) error {
	tw := table(w)
	fmt.Fprintln(tw, "SERVICE ADDRESS\tBACKEND ADDRESS (REVNAT_ID) (SLOT)\tBACKEND ID\tPOD")
	for _, s := range rows {
		kind := "ClusterIP"
		if s.NodePort {
			kind = "NodePort"
		}
		fmt.Fprintf(tw, "%s\t0.0.0.0:0 (%d) (0) [%s]\t\t\n", s.Frontend, s.ID, kind)
		for i, b := range s.Backends {
			pod := b.Pod
			if pod == "" {
				pod = "-"
			}
			fmt.Fprintf(tw, "\t%s (%d) (%d)\t%d\t%s\n", b.Address, s.ID, i+1, b.ID, pod)
		}
	}
	return tw.Flush()
}

func onOff(b bool) string {
	if b {
		return "Enabled"
	}
	return "Disabled"
}

// FormatEndpoints writes endpoints like `cilium endpoint list`.
func FormatEndpoints(w io.Writer, rows []EndpointRow) error {
	tw := table(w)
	fmt.Fprintln(tw, "ENDPOINT\tPOLICY (ingress)\tPOLICY (egress)\tIDENTITY\tLABELS\tIPv4\tPOD\tDEVICE\tIFINDEX\tLXC MAC\tPOD MAC")
	for _, e := range rows {
		labels := e.Labels
		if labels == "" {
			labels = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, onOff(e.IngressEnforce), onOff(e.EgressEnforce),
			e.Identity, labels, e.IP, e.Pod, e.Device, e.IfIndex, e.LXCMAC, e.PodMAC)
	}
	return tw.Flush()
}

// FormatPolicy writes one endpoint's policy entries like `cilium bpf
// policy get`, with the lookup level each entry is found at.
func FormatPolicy(w io.Writer, rows []PolicyRow) error {
	tw := table(w)
	fmt.Fprintln(tw, "POLICY\tDIRECTION\tIDENTITY\tPORT/PROTO\tLEVEL\tPROXY PORT\tBYTES\tPACKETS")
	for _, r := range rows {
		verdict := "Allow"
		if r.Deny {
			verdict = "Deny"
		}
		id := "ANY"
		if r.Identity != 0 {
			id = fmt.Sprint(r.Identity)
		}
		port := "ANY"
		if r.Port != 0 {
			port = fmt.Sprintf("%d/%s", r.Port, r.Proto)
		} else if r.Proto != "" && r.Proto != "ANY" {
			port = "ANY/" + r.Proto
		}
		proxy := "NONE"
		if r.ProxyPort != 0 {
			proxy = fmt.Sprint(r.ProxyPort)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", verdict, r.Direction, id, port, r.Level, proxy, r.Bytes, r.Packets)
	}
	return tw.Flush()
}

// FormatIPCache writes ipcache entries like `cilium bpf ipcache list`.
func FormatIPCache(w io.Writer, rows []IPCacheRow) error {
	tw := table(w)
	fmt.Fprintln(tw, "IP PREFIX/ADDRESS\tIDENTITY\tTUNNEL ENDPOINT")
	for _, r := range rows {
		tun := "0.0.0.0"
		if r.Tunnel != "" {
			tun = r.Tunnel
		}
		fmt.Fprintf(tw, "%s\tidentity=%d\t%s\n", r.Prefix, r.Identity, tun)
	}
	return tw.Flush()
}

// FormatMetrics writes counters like `cilium bpf metrics list`, then the
// L7 proxy's request counters, if any, in a table of their own.
func FormatMetrics(w io.Writer, rows []MetricRow) error {
	tw := table(w)
	fmt.Fprintln(tw, "REASON\tDIRECTION\tPACKETS\tBYTES")
	var l7 []MetricRow
	for _, r := range rows {
		if r.L7 {
			l7 = append(l7, r)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", r.Reason, r.Direction, r.Packets, r.Bytes)
	}
	if err := tw.Flush(); err != nil || len(l7) == 0 {
		return err
	}
	fmt.Fprintln(w)
	tw = table(w)
	fmt.Fprintln(tw, "L7 VERDICT\tSTATUS\tDIRECTION\tREQUESTS")
	for _, r := range l7 {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", r.Verdict, r.Status, r.Direction, r.Packets)
	}
	return tw.Flush()
}

// FormatTC writes the programs at the tc hooks like `bpftool net show`'s
// tc section: device, clsact hook, program, id and tag.
func FormatTC(w io.Writer, rows []TCFilterRow) error {
	tw := table(w)
	fmt.Fprintln(tw, "DEVICE\tHOOK\tPROGRAM\tID\tTAG")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\tclsact/%s\t%s\t%d\t%s\n", r.Device, r.Hook, r.Program, r.ID, r.Tag)
	}
	return tw.Flush()
}

// FormatBGPPeers writes the sessions like `cilium bgp peers`.
func FormatBGPPeers(w io.Writer, peers bgp.PeerList) error {
	_, err := io.WriteString(w, strings.TrimRight(peers.String(), "\n")+"\n")
	return err
}

// FormatBGPRoutes writes the RIB like `cilium bgp routes`.
func FormatBGPRoutes(w io.Writer, routes bgp.RouteList) error {
	_, err := io.WriteString(w, strings.TrimRight(routes.String(), "\n")+"\n")
	return err
}

// FormatKernelRoutes writes routes like `ip route show table main`.
func FormatKernelRoutes(w io.Writer, routes []KernelRoute) error {
	for _, r := range routes {
		line := r.Dst
		if r.Gateway != "" {
			line += " via " + r.Gateway
		}
		if r.Device != "" {
			line += " dev " + r.Device
		}
		if r.Protocol != "" {
			line += " proto " + r.Protocol
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
