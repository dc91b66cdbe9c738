package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		status     int
		wantStdout string
	}{
		{"clean object", []string{"-v", "../../testdata/clean.o"}, 0, "program clean: 29 instructions"},
		{"object breaking 4.19", []string{"../../testdata/new_helper.o"}, 1, "helper: bpf_redirect_peer (helper 155)"},
		{"unknown kernel", []string{"-kernel", "2.6", "../../testdata/clean.o"}, 2, ""},
		{"no objects", nil, 2, ""},
		{"missing object", []string{"../../testdata/missing.o"}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := run(tc.args, &stdout, &stderr)
			t.Logf("stdout:\n%sstderr:\n%s", stdout.String(), stderr.String())
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout does not contain %q", tc.wantStdout)
			}
		})
	}
}
