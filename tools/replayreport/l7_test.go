package replayreport

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/topologies"
)

// l7Report is the l7 topology's two GETs from pod1 to pod4:8080 as the
// journeys of their first packets: handed to node2's proxy, which
// forwards /public/a (200) and denies /private (403).
func l7Report() journey.Report {
	hops := func(path string, status int, verdict journey.Verdict, reason, rule string) []journey.Hop {
		h := func(node string, point journey.Point, dev, es, ed string, ttl uint8) journey.Hop {
			return journey.Hop{Node: node, Point: point, Device: dev, EthSrc: es, EthDst: ed, IPSrc: "10.1.1.10", IPDst: "10.1.2.40",
				TTL: ttl, Proto: "tcp", Sport: 40000, Dport: 8080, Verdict: journey.Forwarded}
		}
		out := []journey.Hop{
			h("node1", journey.PodEgress, "pod1:eth0", "0a:01:01:01:01:0a", "0e:01:01:01:01:0a", 64),
			h("node1", journey.FromContainer, "lxc1a2b3c", "0a:01:01:01:01:0a", "0e:01:01:01:01:0a", 64),
			h("node1", journey.ToNetdev, "bond0", "52:54:00:00:01:01", "52:55:00:00:01:01", 63),
			h("node2", journey.FromNetdev, "bond0", "52:55:00:00:02:01", "52:54:00:00:02:01", 62),
			h("node2", journey.Proxy, "lxc4d5e6f", "0e:02:02:02:02:28", "0a:02:02:02:02:28", 61),
		}
		p := &out[len(out)-1]
		p.Verdict, p.DropReason = verdict, reason
		p.L7 = &journey.L7{Method: "GET", Path: path, Status: status, Rule: rule}
		return out
	}
	return journey.Report{Kernel: "6.1.192", Packets: []journey.Packet{
		{Index: 0, Verdict: journey.Delivered, DeliveredTo: "node2:proxy",
			Hops: hops("/public/a", 200, journey.Forwarded, "", `policy "backend-l7" ingress[0] toPorts[0] http[0]: GET /public/.*`)},
		{Index: 1, Verdict: journey.Dropped, DropReason: "Policy denied",
			Hops: hops("/private", 403, journey.Dropped, "Policy denied", `port 8080/TCP: no HTTP rule of policy "backend-l7" ingress[0] toPorts[0] matches`)},
	}}
}

// TestL7Text: the proxy hop's l7 line, and the drop line naming the
// request, its status and the port's rules.
func TestL7Text(t *testing.T) {
	top, err := topologies.Builtin("l7")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteText(&b, l7Report(), top); err != nil {
		t.Fatal(err)
	}
	golden(t, "l7-proxy.l7.txt", b.String())
	if want := `  drop: Policy denied at hop 04, node2 proxy lxc4d5e6f (HTTP GET /private answered 403; port 8080/TCP: no HTTP rule of policy "backend-l7" ingress[0] toPorts[0] matches); src 10.1.1.10 (identity 38586 [app=frontend]) -> dst 10.1.2.40 (identity 19216 [app=backend])`; !strings.Contains(b.String(), want) {
		t.Errorf("text lacks\n%s", want)
	}
}

// TestL7HTML: the figure draws the proxy hop in its own style with the
// request and status, and the table has the L7 row under it; Chromium
// renders it.
func TestL7HTML(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, l7Report(), HTMLOptions{Title: "l7"}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		`<rect class="hop proxy"`,
		`<rect class="hop proxy drop"`,
		`>GET /public/a → 200</text>`,
		`>DROP: Policy denied, HTTP 403</text>`,
		`<tr class="l7"><td></td><td colspan="12">L7 proxy: HTTP GET /public/a → 200, policy &#34;backend-l7&#34; ingress[0] toPorts[0] http[0]: GET /public/.*</td></tr>`,
		`<tr class="l7"><td></td><td colspan="12">L7 proxy: HTTP GET /private → 403, port 8080/TCP: no HTTP rule of policy &#34;backend-l7&#34; ingress[0] toPorts[0] matches</td></tr>`,
		`DELIVERED</span> to node2:proxy`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if n := strings.Count(page, `<tr class="l7">`); n != 2 {
		t.Errorf("%d L7 rows, want 2", n)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		return // TestHTMLInChromium names the missing browser
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := runChromium(t, "/usr/bin/chromium", "--dump-dom", "file://"+path)
	if !strings.Contains(dom, "GET /public/a → 200") || !strings.Contains(dom, "DROP: Policy denied, HTTP 403") {
		t.Errorf("the proxy hops are not in the rendered DOM")
	}
}
