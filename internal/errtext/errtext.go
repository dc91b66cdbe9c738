// Package errtext checks error messages for repeated context. Each layer of
// a call chain adds what only it knows, once: the function that fails names
// the operation, its caller the object ("node1: node-setup: load bpf_lxc:
// ..."). A message that says "replay: replay:" or "node1: node-setup: node
// node1:" has a layer repeating another; Repeated finds that, and Check
// pins a whole message in a test.
package errtext

import (
	"strings"
	"testing"
)

// Repeated returns the first piece of context that a line of msg repeats,
// or "" when none does. A line is split at ": " into pieces, compared with
// case, '-' and '_' ignored; a piece is repeated when a later piece of the
// line
//   - is the same ("replay: replay:", "ct list: node1: ct-list:"),
//   - starts with it and a space ("open: open /x"), or
//   - is a one-word piece that the other names as a word of its own
//     ("node1: node-setup: node node1:", "vm exec: node1: exec:").
func Repeated(msg string) string {
	for _, line := range strings.Split(msg, "\n") {
		if r := repeatedInLine(line); r != "" {
			return r
		}
	}
	return ""
}

func repeatedInLine(line string) string {
	pieces := strings.Split(line, ": ")
	norm := make([]string, len(pieces))
	for i, p := range pieces {
		norm[i] = normalize(p)
	}
	for i, a := range norm {
		if a == "" {
			continue
		}
		for _, b := range norm[i+1:] {
			if b == "" {
				continue
			}
			if a == b || strings.HasPrefix(b, a+" ") || namesWord(a, b) || namesWord(b, a) {
				return pieces[i]
			}
		}
	}
	return ""
}

// namesWord reports whether word, a piece of one word of at least three
// characters, is a word of the piece of several words s.
func namesWord(word, s string) bool {
	if len(word) < 3 || strings.Contains(word, " ") || !strings.Contains(s, " ") {
		return false
	}
	for _, w := range strings.Fields(s) {
		if w == word {
			return true
		}
	}
	return false
}

func normalize(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer("-", " ", "_", " ").Replace(s)
}

// Check fails t unless err's message is exactly want and repeats no
// context (see Repeated).
func Check(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("no error; want %q", want)
		return
	}
	got := err.Error()
	if got != want {
		t.Errorf("error\n got %q\nwant %q", got, want)
	}
	if r := Repeated(got); r != "" {
		t.Errorf("error %q repeats %q", got, r)
	}
}
