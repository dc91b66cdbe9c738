package kernels

import (
	"os"
	"strings"
)

// Target names one catalogue kernel: a series and a flavour.
type Target struct {
	Series, Flavour string
}

// EnvTestKernels selects the kernels of the per-kernel VM tests (see
// TestTargets); EnvFetchAll=1 selects all of them.
const (
	EnvTestKernels = "HOPLAB_TEST_KERNELS"
	EnvFetchAll    = "HOPLAB_FETCH_ALL"
)

// ParseTargets parses a kernel list: "" is the default kernel, "all" every
// series in every flavour, else comma-separated "series/flavour" items (an
// empty flavour is the default one).
func ParseTargets(spec string) []Target {
	switch spec {
	case "":
		return []Target{{DefaultSeries, DefaultFlavour}}
	case "all":
		var out []Target
		for _, s := range Series {
			for _, f := range Flavours {
				out = append(out, Target{s, f})
			}
		}
		return out
	}
	var out []Target
	for _, k := range strings.Split(spec, ",") {
		s, f, _ := strings.Cut(strings.TrimSpace(k), "/")
		out = append(out, Target{s, f})
	}
	return out
}

// TestTargets returns the kernels a per-kernel VM test covers: those of
// HOPLAB_TEST_KERNELS ("6.1/cloud,7.2/generic" or "all"), all with
// HOPLAB_FETCH_ALL=1, else the default one.
func TestTargets() []Target {
	if os.Getenv(EnvFetchAll) != "" {
		return ParseTargets("all")
	}
	return ParseTargets(os.Getenv(EnvTestKernels))
}
