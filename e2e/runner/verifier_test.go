package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The runner asks hoplab verifier for the run's kernel: a series as it is
// (the default series when none), a user's image and modules directory
// made absolute and ended by ';' so that hoplab keeps them one kernel.
func TestKernelsArg(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		t    Target
		want string
	}{
		{Target{Series: "7.2"}, "7.2"},
		{Target{}, "6.1"},
		{Target{User: "/k/bzImage"}, "/k/bzImage;"},
		{Target{User: "k/bzImage,/k/modules"}, filepath.Join(wd, "k/bzImage") + ",/k/modules;"},
	} {
		if got := c.t.kernelsArg(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.t, got, c.want)
		}
	}
}

// The summary line names the programs, the release, the program the
// verifier worked hardest on and the table's file.
func TestVerifierLine(t *testing.T) {
	table := `[{"kernel":"6.1","release":"6.1.0-56-cloud-amd64","programs":[
		{"object":"bpf_lxc","program":"hoplab_from_container","insns":1551,"processed":6650,"verify_ns":72980000},
		{"object":"bpf_netdev","program":"hoplab_to_netdev","insns":239,"processed":321,"verify_ns":1130000}]}]`
	got := verifierLine([]byte(table), "/a/verifier.json", 4200*time.Millisecond)
	want := "verifier: 2 programs loaded on 6.1.0-56-cloud-amd64 in 4.2s; most processed: bpf_lxc/hoplab_from_container, 6650 insns (/a/verifier.json)"
	if got != want {
		t.Errorf("line\n%s\nwant\n%s", got, want)
	}
	if got := verifierLine([]byte("{"), "/a/verifier.json", 0); got[:40] != "verifier: unreadable table in /a/verifie" {
		t.Errorf("bad table: %q", got)
	}
}
