package replayreport

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/topologies"
)

// The kernels page of a differing pair draws both paths side by side, the
// first differing hop filled (to-netdev, hop 03, on both sides) and the
// later differing hops outlined; the hop tables are aligned row by row,
// the differing cells highlighted, a hop one side lacks shown as an empty
// row there. An equal pair gets its line and folded paths.
func TestWriteKernelsHTML(t *testing.T) {
	a, b := differingPair(t)
	top, err := topologies.Builtin("pod-to-service")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteKernelsHTML(&out, a, b, HTMLOptions{Capture: "tcp-syn-vip.pcap", Topology: top}); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	for _, want := range []string{
		"kernels <b>5.10 (5.10.0-46-cloud-amd64)</b> and <b>7.2 (7.2.12&#43;deb14-cloud-amd64)</b> · 1 packet(s): 0 alike, 1 differ",
		`<div class="differs">packet 0 differs between 5.10 and 7.2, first at hop 03 (node1 to-netdev bond0): eth_dst, ttl</div>`,
		"<li>hop 03 (node1 to-netdev bond0): ttl: 63 on 5.10, 62 on 7.2</li>",
		`<tr class="absent"><td>–</td><td>node2</td><td>wire</td><td>-</td><td>no such hop on this kernel</td>`,
		`<td class="dif">62</td>`, `<td class="dif">52:55:71:f1:2b:99</td>`,
		`<td class="dif">SYN_SEEN</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Row 03 is the first differing one on both sides, in the tables and
	// in the figures; rows before it are not marked.
	if n := strings.Count(page, `<tr class=" first"><td>03</td>`); n != 2 {
		t.Errorf("%d first rows 03, want 2 (one per side)", n)
	}
	if n := strings.Count(page, ` first"`); n != 4 {
		t.Errorf("%d first marks, want 4 (two rows, two figure hops)", n)
	}
	firstHop := regexp.MustCompile(`<rect class="hop diff first" x="\d+" y="\d+" width="\d+" height="\d+" rx="6"/>\s*<text class="idx"[^>]*>03</text>`)
	if n := len(firstHop.FindAllString(page, -1)); n != 2 {
		t.Errorf("%d figure hops 03 filled as the first difference, want 2", n)
	}
	for _, row := range []string{"00", "01", "02"} {
		if regexp.MustCompile(`<tr class="[^"]*"><td>` + row + `</td>(<td class="">[^<]*</td>)*<td class="dif">`).MatchString(page) {
			t.Errorf("row %s has a differing cell", row)
		}
	}
	if strings.Contains(page, "<details>") {
		t.Error("a differing packet's paths are folded")
	}

	out.Reset()
	if err := WriteKernelsHTML(&out, a, KernelRun{Name: "7.2", Report: a.Report}, HTMLOptions{Topology: top}); err != nil {
		t.Fatal(err)
	}
	page = out.String()
	for _, want := range []string{"1 packet(s): 1 alike, 0 differ", `<div class="same">packet 0: the same journey on 5.10 and 7.2: DELIVERED to pod4, 10 hops, 2 CT entries</div>`, "<details><summary>both paths</summary>"} {
		if !strings.Contains(page, want) {
			t.Errorf("equal page lacks %q", want)
		}
	}
	if strings.Contains(page, `class="dif"`) || strings.Contains(page, ` diff"`) || strings.Contains(page, ` diff first"`) || strings.Contains(page, ` first"`) {
		t.Error("an equal pair has differences marked")
	}
}

// A proxy hop's L7 row is on the page, highlighted when it differs.
func TestKernelsHTMLL7(t *testing.T) {
	px := func(status int) journey.Report {
		return journey.Report{Packets: []journey.Packet{{Verdict: journey.Delivered, DeliveredTo: "node2:proxy", Hops: []journey.Hop{{Node: "node2", Point: journey.Proxy, Device: "lo",
			Verdict: journey.Forwarded, L7: &journey.L7{Method: "GET", Path: "/private", Status: status, Rule: "GET /public/.*"}}}}}}
	}
	var out bytes.Buffer
	if err := WriteKernelsHTML(&out, KernelRun{Name: "a", Report: px(403)}, KernelRun{Name: "b", Report: px(200)}, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `<tr class="l7 difouter">`); n != 2 {
		t.Errorf("%d highlighted L7 rows, want 2:\n%s", n, out.String())
	}
}

// The kernels page renders in headless Chromium: not blank, both paths
// drawn (every device of both journeys in the DOM).
func TestKernelsHTMLInChromium(t *testing.T) {
	name := "chromium"
	if _, err := exec.LookPath(name); err != nil {
		if _, err := exec.LookPath("chromium-browser"); err == nil {
			name = "chromium-browser"
		}
	}
	chromium := testreq.Command(t, name, "apt-get install -y chromium (Debian) or chromium-browser (Ubuntu)")
	a, b := differingPair(t)
	top, err := topologies.Builtin("pod-to-service")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteKernelsHTML(&out, a, b, HTMLOptions{Capture: "tcp-syn-vip.pcap", Topology: top}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "kernels.html")
	if err := os.WriteFile(page, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	runChromium(t, chromium, "--screenshot="+shot, "--window-size=1600,1000", "file://"+page)
	if keep := os.Getenv("HOPLAB_SCREENSHOT_DIR"); keep != "" {
		data, _ := os.ReadFile(shot)
		_ = os.WriteFile(filepath.Join(keep, "kernels.png"), data, 0o644)
	}
	if v := lumaVariance(readPNG(t, shot)); v < 100 {
		t.Errorf("screenshot looks blank: luma variance %.1f", v)
	}
	dom := runChromium(t, chromium, "--dump-dom", "file://"+page)
	if n := strings.Count(dom, "<svg"); n != 2 {
		t.Errorf("%d figures, want 2 (one per kernel)", n)
	}
	for _, r := range []KernelRun{a, b} {
		for _, h := range r.Report.Packets[0].Hops {
			if h.Device != "" && !strings.Contains(dom, ">"+h.Device+"<") {
				t.Errorf("%s: device %q not in the DOM", r.Name, h.Device)
			}
		}
	}
}
