package topologies

import (
	"fmt"
	"strings"
	"testing"
)

// TestManyErrorsAreCapped: a topology with thousands of errors lists the
// first MaxErrors and sums up the rest in one more line, where they start.
func TestManyErrorsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: big\nrouter: {name: tor, asn: 65000}\nnodes:\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "  - {name: n%d, asn: 1, bogus: x}\n", i)
	}
	_, err := Parse("big.yaml", []byte(b.String()))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != MaxErrors+1 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), MaxErrors+1, err)
	}
	last := lines[MaxErrors]
	if !strings.HasPrefix(last, "big.yaml:") || !strings.Contains(last, "more error(s) from here on (the first 20 are listed)") {
		t.Errorf("last line %q", last)
	}
}
