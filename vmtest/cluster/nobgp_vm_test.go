//go:build vm

package cluster

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// TestNoBGP: a cluster without speakers serves same-node traffic through
// the datapath, and WaitConverged says BGP did not converge.
func TestNoBGP(t *testing.T) {
	testreq.Command(t, "qemu-system-x86_64", "apt-get install qemu-system-x86")
	top, err := topologies.Builtin("same-node")
	if err != nil {
		t.Fatal(err)
	}
	c := StartT(t, Spec{Topology: top, Series: os.Getenv("HOPLAB_SERIES"), NoBGP: true, ConsoleLine: func(string, string) {}})
	if tm := c.Timings(); tm.Converge != 0 {
		t.Errorf("converge timing %v without BGP", tm.Converge)
	}
	res, err := c.Run(ctx(t, 30*time.Second), nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientUDP, Dst: "10.224.1.1:53", Payload: []byte("q")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outcomes) != 1 || !res.Outcomes[0].OK || !strings.Contains(res.Outcomes[0].Reply, "hoplab pod2") {
		t.Errorf("UDP pod1 → 10.224.1.1:53: %+v", res)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = c.WaitConverged(wctx)
	if !errors.Is(err, ErrNotConverged) || !strings.Contains(err.Error(), "tor") {
		t.Errorf("WaitConverged without speakers: %v", err)
	}
	t.Logf("WaitConverged: %v", err)
	if _, err := c.Run(ctx(t, 10*time.Second), nodeapi.ClientAction{Pod: "pod9", Kind: nodeapi.ClientTCP, Dst: "10.224.1.1:80"}); !errors.Is(err, topologies.ErrUnknownPod) {
		t.Errorf("client action from an unknown pod: %v", err)
	}
}
