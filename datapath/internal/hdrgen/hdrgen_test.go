package hdrgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGoName(t *testing.T) {
	for cname, want := range map[string]string{
		"DROP_POLICY":         "DropPolicy",
		"DROP_INVALID_SIP":    "DropInvalidSIP",
		"DROP_CT_INVALID_HDR": "DropCTInvalidHdr",
		"DROP_TTL_EXCEEDED":   "DropTTLExceeded",
		"TRACE_TO_LXC":        "TraceToLXC",
		"CALL_IPV4_X":         "CallIPv4X",
	} {
		var g Group
		for _, gr := range Groups {
			if strings.HasPrefix(cname, gr.CPrefix) {
				g = gr
				break
			}
		}
		if got := GoName(g, cname); got != want {
			t.Errorf("GoName(%s) = %s, want %s", cname, got, want)
		}
	}
}

// Only commented defines with a known prefix become constants, and
// TRACE_REASON_ wins over TRACE_.
func TestParse(t *testing.T) {
	h := filepath.Join(t.TempDir(), "x.h")
	src := "#define DROP_POLICY 133 /* Policy denied */\n" +
		"#define DROP_INTERNAL 999\n" +
		"#define TRACE_REASON_CT_REPLY 2 /* reply */\n" +
		"#define TRACE_TO_LXC 0 /* to-container */\n" +
		"#define OTHER 5 /* other */\n"
	if err := os.WriteFile(h, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cs, err := Parse(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].Desc != "Policy denied" || cs[1].Group.Type != "TraceReason" || cs[2].Group.Type != "ObsPoint" {
		t.Fatalf("parsed %+v", cs)
	}
	if _, err := Generate("x", filepath.Dir(h), h); err != nil {
		t.Fatal(err)
	}
}
