package errtext

import (
	"errors"
	"testing"
)

// The repetitions the issue quotes are found; the messages that replaced
// them are not.
func TestRepeated(t *testing.T) {
	for msg, want := range map[string]string{
		"node setup: node1: node-setup: node node1: load bpf_lxc: verifier":  "node setup",
		"replay: replay: packet 3: bad injection point":                      "replay",
		"cluster pod-to-service: prepare boot: prepare boot: unknown kernel": "prepare boot",
		"/tmp/x.pcap: open: open /tmp/x.pcap: no such file or directory":     "/tmp/x.pcap",
		"capture.pcap: open: open the file: denied":                          "open",
		"node1: node-setup: node node1: netns: bad":                          "node1",
		"ct list: node1: ct-list: not set up":                                "ct list",
		"vm exec: node1: exec: control connection closed":                    "vm exec",
		"configure node1: configure: configure link eth0: no NIC":            "configure node1",
		"tor: router-setup: fine\nnode1: node-setup: node node1: netns":      "node1",
	} {
		if got := Repeated(msg); got != want {
			t.Errorf("Repeated(%q) = %q, want %q", msg, got, want)
		}
	}
	for _, msg := range []string{
		"cluster same-node: node1: node-setup: load bpf_lxc: program hoplab_to_container on kernel 6.1.0: verifier: R1 invalid mem access",
		"replay: packets 4..7 at pod1: node1: pod-inject: frame 2: send: no buffer space available",
		"cluster pod-to-service: prepare boot: HOPLAB_KERNEL: user kernel: open /nonexistent/bzImage: no such file or directory",
		"node1: configure: link eth0: no NIC with MAC 0a:00:00:00:00:01",
		"node-setup: vm node1: qemu exited: signal: killed",
		"tor: bgp-peers: bgp speaker not running",
		"",
	} {
		if got := Repeated(msg); got != "" {
			t.Errorf("Repeated(%q) = %q, want none", msg, got)
		}
	}
}

func TestCheck(t *testing.T) {
	var ft fakeT
	Check(&ft, errors.New("replay: replay: packet 3"), "replay: replay: packet 3")
	Check(&ft, errors.New("a: b"), "a: c")
	Check(&ft, nil, "a")
	if ft.errors != 3 {
		t.Errorf("Check reported %d failures, want 3 (a repetition, a mismatch, no error)", ft.errors)
	}
	ft.errors = 0
	Check(&ft, errors.New("node1: node-setup: load bpf_lxc: no such file"), "node1: node-setup: load bpf_lxc: no such file")
	if ft.errors != 0 {
		t.Errorf("Check failed a good message")
	}
}

type fakeT struct {
	testing.TB
	errors int
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.errors++ }
