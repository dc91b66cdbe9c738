// Package mutation makes mutants of source files: small changes of one
// operator, literal, name or statement, each a byte range of the file and
// its replacement. BPF C is mutated over its tokens ([C]), Go over its
// syntax tree ([Go]). `make mutants` (tools/mutants) applies them one at a
// time and runs the tests that should notice.
package mutation

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Mutant is one change to one file.
type Mutant struct {
	// File is the file's path as given to the generator.
	File string `json:"file"`
	// Line and Col locate the change (1-based, Col in bytes).
	Line int `json:"line"`
	Col  int `json:"col"`
	// Operator names the kind of change ("rel-flip", "swap-src-dst", ...).
	Operator string `json:"operator"`
	// Offset and Len are the byte range of File that is replaced.
	Offset int `json:"offset"`
	Len    int `json:"len"`
	// Original is the text of that range, Replacement what replaces it.
	Original    string `json:"original"`
	Replacement string `json:"replacement"`
	// Context is the original source line, trimmed, and Prev the last
	// non-blank line before it.
	Context string `json:"context"`
	Prev    string `json:"prev,omitempty"`
	// Twin counts earlier mutants of the file with the same key
	// otherwise (same change on identical lines).
	Twin int `json:"twin,omitempty"`
}

// Apply returns src with m applied. src must be the file m was made from.
func (m Mutant) Apply(src []byte) ([]byte, error) {
	if m.Offset < 0 || m.Offset+m.Len > len(src) || string(src[m.Offset:m.Offset+m.Len]) != m.Original {
		return nil, fmt.Errorf("mutant %s does not fit the file", m)
	}
	out := make([]byte, 0, len(src)-m.Len+len(m.Replacement))
	out = append(out, src[:m.Offset]...)
	out = append(out, m.Replacement...)
	return append(out, src[m.Offset+m.Len:]...), nil
}

// String is "file:line:col operator: original -> replacement".
func (m Mutant) String() string {
	return fmt.Sprintf("%s:%d:%d %s: %s -> %s", m.File, m.Line, m.Col, m.Operator, short(m.Original), short(m.Replacement))
}

// Key identifies a mutant across edits elsewhere in its file: the file, the
// operator, the change, its source line's text and the column in it, the
// line before, and which of identical twins it is. The equivalent-mutants
// file lists keys.
func (m Mutant) Key() string {
	k := fmt.Sprintf("%s|%s|%s -> %s|%d|%s|%s", m.File, m.Operator, short(m.Original), short(m.Replacement), m.Col, m.Context, m.Prev)
	if m.Twin > 0 {
		k += fmt.Sprintf("|#%d", m.Twin)
	}
	return k
}

// numberTwins sets Twin on mutants whose keys would be equal.
func numberTwins(ms []Mutant) {
	seen := map[string]int{}
	for i := range ms {
		k := ms[i].Key()
		ms[i].Twin = seen[k]
		seen[k]++
	}
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	if s == "" {
		return `""`
	}
	return s
}

// position fills Line, Col and Context of m from src.
func position(m *Mutant, src []byte) {
	before := src[:m.Offset]
	m.Line = bytes.Count(before, []byte{'\n'}) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	m.Col = m.Offset - start + 1
	end := bytes.IndexByte(src[m.Offset:], '\n')
	if end < 0 {
		end = len(src) - m.Offset
	}
	m.Context = strings.Join(strings.Fields(string(src[start:m.Offset+end])), " ")
	for _, l := range slices.Backward(strings.Split(string(src[:max(start-1, 0)]), "\n")) {
		if t := strings.Join(strings.Fields(l), " "); t != "" {
			m.Prev = t
			break
		}
	}
}
