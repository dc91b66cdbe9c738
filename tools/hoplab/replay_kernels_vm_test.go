//go:build vm

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/testreq"
)

// TestReplayKernelsEqual replays the reference fixture on 5.10 and 6.1 and
// requires the same journeys (our datapath must behave alike on every
// kernel): exit 0, equal, one delivered journey per kernel, and the HTML
// comparison --out writes says so.
func TestReplayKernelsEqual(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	bin := buildCLI(t)
	page := filepath.Join(t.TempDir(), "kernels.html")
	out, errOut, code := runBin(t, bin, "replay", "--topology", "pod-to-service", "--pcap", "../../fixtures/data/tcp-syn-vip.pcap",
		"--kernels", "5.10,6.1", "--json", "--out", page)
	var res kernelsResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("exit %d, %v: %s\n%s", code, err, out, errOut)
	}
	if code != 0 || !res.Equal || len(res.Differences) != 0 || len(res.Kernels) != 2 {
		t.Fatalf("exit %d, equal %v, differences %+v: %s", code, res.Equal, res.Differences, errOut)
	}
	for _, k := range res.Kernels {
		if len(k.Report.Packets) != 1 || k.Report.Packets[0].DeliveredTo != "pod4" || len(k.Report.Packets[0].Hops) < 10 {
			t.Errorf("kernel %s (%s): %+v", k.Kernel, k.Report.Kernel, k.Report.Packets)
		}
	}
	html, err := os.ReadFile(page)
	if err != nil || !strings.Contains(string(html), "1 packet(s): 1 alike, 0 differ") {
		t.Errorf("--out %s: %v\n%.400s", page, err, html)
	}
}
