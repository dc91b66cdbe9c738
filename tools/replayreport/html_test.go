package replayreport

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/internal/testreq"
)

// TestHTMLInChromium renders the report of two fixtures, opens it in
// headless Chromium, and checks that the screenshot is not blank and that
// the DOM holds every hop's device name.
func TestHTMLInChromium(t *testing.T) {
	// Debian ships /usr/bin/chromium, Ubuntu chromium-browser.
	name := "chromium"
	if _, err := exec.LookPath(name); err != nil {
		if _, err := exec.LookPath("chromium-browser"); err == nil {
			name = "chromium-browser"
		}
	}
	chromium := testreq.Command(t, name, "apt-get install -y chromium (Debian) or chromium-browser (Ubuntu)")
	for _, name := range []string{"tcp-syn-vip", "policy-denied-port"} {
		t.Run(name, func(t *testing.T) {
			rep, top, frames := expected(t, name)
			dir := t.TempDir()
			files, err := WritePcaps(dir, rep, Frames(rep, frames, nil, time.Unix(1700000000, 0)))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := WriteHTML(&b, rep, HTMLOptions{Capture: name + ".pcap", Topology: top, Files: files}); err != nil {
				t.Fatal(err)
			}
			page := filepath.Join(dir, "report.html")
			if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			shot := filepath.Join(dir, "shot.png")
			runChromium(t, chromium, "--screenshot="+shot, "--window-size=1400,900", "file://"+page)
			if keep := os.Getenv("HOPLAB_SCREENSHOT_DIR"); keep != "" {
				data, _ := os.ReadFile(shot)
				_ = os.WriteFile(filepath.Join(keep, name+".png"), data, 0o644)
			}
			img := readPNG(t, shot)
			if v := lumaVariance(img); v < 100 {
				t.Errorf("screenshot looks blank: luma variance %.1f", v)
			}
			dom := runChromium(t, chromium, "--dump-dom", "file://"+page)
			if !strings.Contains(dom, "<svg") {
				t.Errorf("DOM has no svg figure")
			}
			for _, p := range rep.Packets {
				for i, h := range p.Hops {
					if h.Device != "" && !strings.Contains(dom, ">"+h.Device+"<") {
						t.Errorf("packet %d hop %d: device %q not in the DOM", p.Index, i, h.Device)
					}
				}
				if p.Verdict == "DROPPED" && !strings.Contains(dom, "DROP: "+p.DropReason) {
					t.Errorf("packet %d: drop %q not marked in the figure", p.Index, p.DropReason)
				}
			}
		})
	}
}

func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}

// lumaVariance is the variance of the pixels' luma (0..255): near 0 for a
// blank page.
func lumaVariance(img image.Image) float64 {
	b := img.Bounds()
	var n, sum, sq float64
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			l := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 257
			n++
			sum += l
			sq += l * l
		}
	}
	if n == 0 {
		return 0
	}
	m := sum / n
	return sq/n - m*m
}

// A tunnelled hop gets a second row with its encapsulation; other hops
// get none.
func TestHTMLOuterRow(t *testing.T) {
	rep := journey.Report{Kernel: "6.1", Packets: []journey.Packet{{Verdict: journey.Delivered, DeliveredTo: "pod4", Hops: []journey.Hop{
		{Node: "node1", Point: journey.ToOverlay, Device: "cilium_vxlan", IPSrc: "10.1.1.10", IPDst: "10.1.2.40", Verdict: journey.Forwarded},
		{Node: "node1", Point: journey.Wire, Device: "node1-0", IPSrc: "10.1.1.10", IPDst: "10.1.2.40", Verdict: journey.Forwarded,
			Outer: &journey.Outer{EthSrc: "52:54:00:00:00:01", EthDst: "52:55:00:00:00:01", IPSrc: "10.255.1.11", IPDst: "10.255.2.12", TTL: 64, Proto: "udp", Sport: 40675, Dport: 8472, VNI: 38586}},
	}}}}
	var b bytes.Buffer
	if err := WriteHTML(&b, rep, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	want := `<tr class="outer"><td></td><td colspan="12">in VXLAN: 52:54:00:00:00:01 → 52:55:00:00:00:01, 10.255.1.11 → 10.255.2.12, ttl 64, udp 40675 → 8472, VNI 38586 (the sender&#39;s identity)</td></tr>`
	if n := strings.Count(b.String(), `<tr class="outer">`); n != 1 || !strings.Contains(b.String(), want) {
		t.Errorf("%d outer rows; want one:\n%s", n, want)
	}
}
