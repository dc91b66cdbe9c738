package kernels

import (
	"slices"
	"testing"
)

func TestParseTargets(t *testing.T) {
	if got := ParseTargets(""); !slices.Equal(got, []Target{{DefaultSeries, DefaultFlavour}}) {
		t.Errorf(`ParseTargets("") = %v`, got)
	}
	if got := ParseTargets("all"); len(got) != len(Series)*len(Flavours) || got[0] != (Target{Series[0], Flavours[0]}) {
		t.Errorf(`ParseTargets("all") = %v`, got)
	}
	if got, want := ParseTargets("6.1/cloud, 7.2/generic,5.10"), []Target{{"6.1", "cloud"}, {"7.2", "generic"}, {"5.10", ""}}; !slices.Equal(got, want) {
		t.Errorf("ParseTargets(list) = %v, want %v", got, want)
	}
	t.Setenv(EnvFetchAll, "1")
	if got := TestTargets(); len(got) != len(Series)*len(Flavours) {
		t.Errorf("TestTargets with %s=1: %v", EnvFetchAll, got)
	}
}
