package mutation

import (
	"strconv"
	"strings"
)

// C operators.
const (
	OpRelFlip     = "rel-flip"     // a comparison negated: < becomes >=, == becomes !=
	OpRelBoundary = "rel-boundary" // a comparison's boundary moved: < becomes <=
	OpLogic       = "logic-flip"   // && becomes ||, and back
	OpOffByOne    = "off-by-one"   // a small literal in a comparison or sum, plus or minus one
	OpSwap        = "swap-src-dst" // a source name for its destination (saddr/daddr, ingress/egress, ...)
	OpFlagDrop    = "flag-drop"    // a helper flag (BPF_F_PSEUDO_HDR, ...) replaced by 0
	OpCallDrop    = "call-drop"    // a call statement removed (map updates, counters, CT creation)
	OpCheckDrop   = "check-drop"   // an if's condition replaced by 0: the check never fires
	OpVerdict     = "verdict-flip" // TC_ACT_OK for TC_ACT_SHOT, and back
)

// cSwaps are the names one mutation swaps for another.
var cSwaps = map[string]string{
	"saddr": "daddr", "daddr": "saddr",
	"sport": "dport", "dport": "sport",
	"h_source": "h_dest", "h_dest": "h_source",
	"IP_SADDR_OFF": "IP_DADDR_OFF", "IP_DADDR_OFF": "IP_SADDR_OFF",
	"CT_INGRESS": "CT_EGRESS", "CT_EGRESS": "CT_INGRESS",
	"POLICY_INGRESS": "POLICY_EGRESS", "POLICY_EGRESS": "POLICY_INGRESS",
	"METRIC_INGRESS": "METRIC_EGRESS", "METRIC_EGRESS": "METRIC_INGRESS",
	"lxc_mac": "pod_mac", "pod_mac": "lxc_mac",
}

// cFlags are the helper flags a mutation drops.
var cFlags = map[string]bool{"BPF_F_PSEUDO_HDR": true, "BPF_F_MARK_MANGLED_0": true, "BPF_F_CURRENT_CPU": false}

var (
	relFlip     = map[string]string{"<": ">=", ">=": "<", ">": "<=", "<=": ">", "==": "!=", "!=": "=="}
	relBoundary = map[string]string{"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
)

// ctoken is one C token: its text and byte offset.
type ctoken struct {
	text string
	off  int
	kind byte // 'i' identifier, 'n' number, 'p' punctuation
}

// C returns the mutants of a BPF C source or header. Comments, strings and
// preprocessor lines (with their continuations) are left alone, so macros
// and #defines are not mutated.
func C(file string, src []byte) []Mutant {
	toks := cTokens(src)
	var out []Mutant
	add := func(op string, off, n int, repl string) {
		m := Mutant{File: file, Operator: op, Offset: off, Len: n, Original: string(src[off : off+n]), Replacement: repl}
		position(&m, src)
		out = append(out, m)
	}
	for i, t := range toks {
		prev := func(k int) ctoken {
			if i-k >= 0 {
				return toks[i-k]
			}
			return ctoken{}
		}
		next := func(k int) ctoken {
			if i+k < len(toks) {
				return toks[i+k]
			}
			return ctoken{}
		}
		switch t.kind {
		case 'p':
			if r, ok := relFlip[t.text]; ok {
				add(OpRelFlip, t.off, len(t.text), r)
			}
			if r, ok := relBoundary[t.text]; ok {
				add(OpRelBoundary, t.off, len(t.text), r)
			}
			switch t.text {
			case "&&":
				add(OpLogic, t.off, 2, "||")
			case "||":
				add(OpLogic, t.off, 2, "&&")
			}
		case 'n':
			p := prev(1).text
			if _, rel := relFlip[p]; !rel && p != "+" && p != "-" {
				break
			}
			v, err := strconv.ParseUint(strings.TrimRight(t.text, "uUlL"), 0, 32)
			if err != nil || v > 4096 {
				break
			}
			add(OpOffByOne, t.off, len(t.text), strconv.FormatUint(v+1, 10))
			if v > 0 {
				add(OpOffByOne, t.off, len(t.text), strconv.FormatUint(v-1, 10))
			}
		case 'i':
			if r, ok := cSwaps[t.text]; ok {
				add(OpSwap, t.off, len(t.text), r)
			}
			if cFlags[t.text] {
				add(OpFlagDrop, t.off, len(t.text), "0")
			}
			switch t.text {
			case "TC_ACT_OK":
				add(OpVerdict, t.off, len(t.text), "TC_ACT_SHOT")
			case "TC_ACT_SHOT":
				add(OpVerdict, t.off, len(t.text), "TC_ACT_OK")
			case "if":
				if next(1).text == "(" {
					if end := matchParen(toks, i+1); end > 0 {
						add(OpCheckDrop, toks[i+1].off+1, toks[end].off-toks[i+1].off-1, "0")
					}
				}
			}
			// A call statement: NAME(...); at the start of a statement,
			// or ret = NAME(...); which then yields 0.
			if next(1).text != "(" || isKeyword(t.text) {
				break
			}
			start := prev(1).text
			assign := start == "=" && prev(2).kind == 'i' && isStmtStart(prev(3).text)
			if !isStmtStart(start) && !assign {
				break
			}
			end := matchParen(toks, i+1)
			if end < 0 || end+1 >= len(toks) || toks[end+1].text != ";" {
				break
			}
			from := t.off
			repl := "(void)0"
			if assign {
				repl = "0"
			}
			add(OpCallDrop, from, toks[end].off+1-from, repl)
		}
	}
	numberTwins(out)
	return out
}

func isStmtStart(prev string) bool {
	return prev == ";" || prev == "{" || prev == "}" || prev == ")" || prev == "else"
}

func isKeyword(s string) bool {
	switch s {
	case "if", "for", "while", "switch", "return", "sizeof", "__builtin_memcpy", "bpf_tail_call",
		"__type", "__uint", "__array", "SEC":
		// bpf_tail_call: dropping it only exchanges one drop for another;
		// __type and friends declare maps and do not compile as calls.
		return true
	}
	return false
}

// matchParen returns the index of the token closing the parenthesis at
// toks[open], or -1.
func matchParen(toks []ctoken, open int) int {
	depth := 0
	for j := open; j < len(toks); j++ {
		switch toks[j].text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// cTokens splits C source into tokens, skipping whitespace, comments,
// string and character literals, and preprocessor lines.
func cTokens(src []byte) []ctoken {
	var toks []ctoken
	lineStart := true
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			lineStart = true
			i++
			continue
		case c == ' ' || c == '\t' || c == '\r':
			i++
			continue
		case lineStart && c == '#':
			// Skip the directive and its continuation lines.
			for i < len(src) && src[i] != '\n' {
				if src[i] == '\\' && i+1 < len(src) && src[i+1] == '\n' {
					i += 2
					continue
				}
				i++
			}
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(string(src[i+2:]), "*/")
			if end < 0 {
				return toks
			}
			i += end + 4
			continue
		}
		lineStart = false
		switch {
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case isIdentStart(c):
			j := i
			for j < len(src) && (isIdentStart(src[j]) || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, ctoken{string(src[i:j]), i, 'i'})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (isIdentStart(src[j]) || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, ctoken{string(src[i:j]), i, 'n'})
			i = j
		default:
			n := 1
			for _, op := range []string{"<<=", ">>=", "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "++", "--", "+=", "-=", "*=", "/=", "&=", "|=", "^="} {
				if strings.HasPrefix(string(src[i:min(i+3, len(src))]), op) {
					n = len(op)
					break
				}
			}
			toks = append(toks, ctoken{string(src[i : i+n]), i, 'p'})
			i += n
		}
	}
	return toks
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
