package datapath

import (
	"os"
	"testing"

	"github.com/hoplab/hoplab/datapath/internal/hdrgen"
)

// The generated Go names must match the C headers: run `make generate`
// after changing bpf/lib/drop.h, trace.h or common.h.
func TestReasonsGeneratedFromHeaders(t *testing.T) {
	want, err := hdrgen.Generate("datapath", ".", "bpf/lib/drop.h", "bpf/lib/trace.h", "bpf/lib/common.h")
	must(t, err)
	got, err := os.ReadFile("reasons_gen.go")
	must(t, err)
	if string(got) != string(want) {
		t.Fatal("reasons_gen.go is stale: run make generate")
	}
	if DropPolicy != 133 || DropPolicy.String() != "Policy denied" || DropNoService != 158 || TraceToLXC != 0 || TraceFromNetwork != 10 {
		t.Error("Cilium numbering changed")
	}
}
