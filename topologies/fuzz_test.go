package topologies

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/hoplab/hoplab/internal/fuzzcorpus"
)

// errLine is one line of a rejection: "file:line:col: msg", line from 1.
var errLine = regexp.MustCompile(`^f\.yaml:[1-9][0-9]*:[0-9]+: \S`)

// FuzzParse checks that no input makes Parse panic, that every rejection
// is a list of *Error located in the file (one "f.yaml:LINE:COL: msg" line
// each, in file order, on a line the input has or just past its end), and
// that an accepted topology is usable end to end and parses the same again.
// The round trip through the topology encoder is FuzzEncode in
// vmtest/cluster. The committed seeds (testdata/fuzz/FuzzParse) are broken
// variants of the shipped topologies; TestParseCorpus writes them. Run it
// with
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s ./topologies
//
// or make fuzz.
func FuzzParse(f *testing.F) {
	for _, name := range Names() {
		data, err := builtin.ReadFile(name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(mutate(nil))
	for _, s := range []string{
		"", "---\n", "name: [", "a: &x [*x]", "- - - -", "{name: t, nodes: [{}]}",
		"name: t\nrouter: {name: tor, asn: 1}\nnodes: [{name: n, asn: 2, podCIDR: 10.0.0.0/8, uplink: {address: 1.1.1.1/8, gateway: 1.0.0.1}}]\n",
		"policies: [{endpointSelector: {}, ingress: [{}], egress: [{toEntities: [all]}]}]",
		"nodes: !!binary aGVsbG8=", "name: !!int 3", "\t", "\xff\xfe", "? [a]\n: b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse("f.yaml", data)
		if err != nil {
			checkParseError(t, data, err)
			if _, again := Parse("f.yaml", data); again == nil || again.Error() != err.Error() {
				t.Fatalf("second parse: %v, first: %v", again, err)
			}
			return
		}
		again, err := Parse("f.yaml", data)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		if !reflect.DeepEqual(top, again) {
			t.Fatalf("two parses differ:\n%+v\n%+v", top, again)
		}
		for _, w := range top.Warnings {
			if w.File != "f.yaml" || w.Line < 1 || strings.Contains(w.Msg, "\n") {
				t.Fatalf("warning %+v not located or not one line", w)
			}
		}
		// Accepted topologies are usable end to end.
		for _, p := range top.Pods {
			if _, err := top.EndpointPolicy(p.Name); err != nil {
				t.Fatal(err)
			}
			if p.LXCName == "" || p.EndpointID == 0 || p.MAC.IsZero() {
				t.Fatalf("pod %s not derived", p.Name)
			}
			if top.Pod(p.Name) != p || top.PodByIP(p.IP) != p || top.Node(p.Node) == nil {
				t.Fatalf("pod %s not indexed", p.Name)
			}
			for _, q := range top.Pods {
				if _, err := Trace(top, p.Name, q.IP.String(), 80, TCP); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, s := range top.Services {
			if _, err := Trace(top, "8.8.8.8", s.VIP.String(), s.Port, s.Protocol); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// checkParseError checks a rejection of data: it matches ErrInvalid, is
// one *Error or a join of them in file order, each for file f.yaml on a
// line of the input as YAML counts lines (or the one after its end, where
// an unterminated construct is reported), with a one-line message; its
// text is one "f.yaml:LINE:COL: msg" line per problem.
func checkParseError(t *testing.T, data []byte, err error) {
	t.Helper()
	if strings.Contains(err.Error(), "internal error while parsing") {
		t.Fatalf("recovered panic: %v", err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not match ErrInvalid", err)
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	lines := yamlLines(data)
	prev := Pos{}
	for _, e := range errs {
		pe, ok := e.(*Error)
		if !ok {
			t.Fatalf("%T %v is not an *Error", e, e)
		}
		if pe.File != "f.yaml" || pe.Line < 1 || pe.Line > lines+1 || pe.Col < 0 {
			t.Fatalf("error %q is not located in the %d-line input (line %d col %d)", pe, lines, pe.Line, pe.Col)
		}
		if pe.Msg == "" || strings.Contains(pe.Msg, "\n") {
			t.Fatalf("error %q: message not one line", pe)
		}
		if pe.Line < prev.Line || pe.Line == prev.Line && pe.Col < prev.Col {
			t.Fatalf("errors not in file order: %v", err)
		}
		prev = Pos{Line: pe.Line, Col: pe.Col}
	}
	for _, l := range strings.Split(err.Error(), "\n") {
		if !errLine.MatchString(l) {
			t.Fatalf("error line %q is not file:line:col: msg", l)
		}
	}
}

// yamlLines is the number of lines of data as YAML counts them: it breaks
// lines at LF, CR, CRLF, NEL, LS and PS.
func yamlLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 1
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

// TestParseCorpus writes testdata/fuzz/FuzzParse (with
// HOPLAB_FUZZ_CORPUS=1): each shipped topology broken in the ways
// topology files break (a second document, a bad second document, cut
// short, a tab in the indentation, a line dropped).
func TestParseCorpus(t *testing.T) {
	var seeds []fuzzcorpus.Seed
	for _, name := range Names() {
		data, err := builtin.ReadFile(name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(data), "\n")
		half := strings.Join(lines[:len(lines)/2], "")
		var tabbed, dropped []string
		for i, l := range lines {
			if i == len(lines)*2/3 && strings.HasPrefix(l, "  ") {
				l = "\t" + l[2:]
			}
			tabbed = append(tabbed, l)
			if i != len(lines)/3 {
				dropped = append(dropped, l)
			}
		}
		for _, s := range []struct{ kind, text string }{
			{"second-document", string(data) + "---\nname: other\n"},
			{"bad-second-document", string(data) + "---\n[\n"},
			{"cut", half},
			{"tab", strings.Join(tabbed, "")},
			{"line-dropped", strings.Join(dropped, "")},
		} {
			seeds = append(seeds, fuzzcorpus.Seed{Name: name + "-" + s.kind, Values: []any{[]byte(s.text)}})
		}
	}
	fuzzcorpus.Update(t, "FuzzParse", seeds)
}
