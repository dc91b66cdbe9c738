package mutation

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"sort"
	"strings"
)

// SchemaVar is the package-level variable a Go schema switches on: the ID
// of the active mutant, 0 for none. [SchemaSwitchFile] declares it from
// the environment variable [SchemaEnv].
const (
	SchemaVar = "hoplabActiveMutant"
	SchemaEnv = "HOPLAB_MUTANT"
)

// SchemaSwitchFile returns the Go file that declares [SchemaVar] in
// package pkg.
func SchemaSwitchFile(pkg string) []byte {
	return fmt.Appendf(nil, `package %s

import (
	"os"
	"strconv"
)

// %s is the mutant a mutation schema runs (tools/mutants); 0 runs none.
var %s = func() int {
	n, _ := strconv.Atoi(os.Getenv(%q))
	return n
}()
`, pkg, SchemaVar, SchemaVar, SchemaEnv)
}

// Placed is one mutant compiled into a schema, with the lines of the
// original file its site spans (compile errors there unplace it).
type Placed struct {
	ID                  int
	FirstLine, LastLine int
}

// site is an expression or statement of the file that one or more mutants
// change, rewritten into a switch over SchemaVar.
type site struct {
	start, end int
	stmt       bool // a branch statement (skip-drop), else a boolean expression
	mutants    []int
	children   []*site
}

// GoSchema writes every mutant of ms (all of file src, ids[i] being the ID
// of ms[i]) into one source, a mutation schema: each changed expression
// becomes `(func() bool { switch hoplabActiveMutant { case ID: return
// MUTATED }; return ORIGINAL }())` and each removed break or continue
// `if hoplabActiveMutant != ID { break }`, so one build runs them all,
// the active one picked at run time. Only boolean sites are placed
// (comparisons, && and ||, negations, if conditions, with off-by-one
// literals inside them) and branch statements; arith-flip mutants, sites
// holding comments, raw strings or function literals, and mutants in skip are left out for
// the caller to test one by one. Lines keep their numbers: a mutated copy
// is written on the site's first line.
func GoSchema(file string, src []byte, ms []Mutant, ids []int, skip map[int]bool) ([]byte, []Placed, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, nil, err
	}
	off := func(p token.Pos) int { return fset.Position(p).Offset }
	bins := map[int]*ast.BinaryExpr{} // by operator offset
	lits := map[int]*ast.BinaryExpr{} // comparison holding a literal at offset
	nots := map[int]*ast.UnaryExpr{}
	conds := map[int]ast.Expr{}
	branches := map[int]*ast.BranchStmt{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BinaryExpr:
			bins[off(x.OpPos)] = x
			for _, side := range []ast.Expr{x.X, x.Y} {
				if lit, ok := side.(*ast.BasicLit); ok {
					lits[off(lit.Pos())] = x
				}
			}
		case *ast.UnaryExpr:
			if x.Op == token.NOT {
				nots[off(x.OpPos)] = x
			}
		case *ast.IfStmt:
			conds[off(x.Cond.Pos())] = x.Cond
		case *ast.BranchStmt:
			branches[off(x.Pos())] = x
		}
		return true
	})
	sites := map[[2]int]*site{}
	for i, m := range ms {
		if skip[ids[i]] {
			continue
		}
		var node ast.Node
		stmt := false
		switch m.Operator {
		case OpRelFlip, OpRelBoundary, OpLogic:
			if b := bins[m.Offset]; b != nil {
				node = b
			}
		case OpOffByOne:
			if b := lits[m.Offset]; b != nil {
				node = b
			}
		case OpNegDrop:
			if u := nots[m.Offset]; u != nil {
				node = u
			}
		case OpCheckDrop:
			if c := conds[m.Offset]; c != nil && off(c.End())-m.Offset == m.Len {
				node = c
			}
		case OpContinue:
			if b := branches[m.Offset]; b != nil {
				node, stmt = b, true
			}
		}
		if node == nil {
			continue
		}
		k := [2]int{off(node.Pos()), off(node.End())}
		text := string(src[k[0]:k[1]])
		// Mutated copies are written on one line: comments, raw strings
		// and function bodies would not survive that.
		if strings.Contains(text, "//") || strings.Contains(text, "/*") || strings.Contains(text, "`") || strings.Contains(text, "func") {
			continue
		}
		s := sites[k]
		if s == nil {
			s = &site{start: k[0], end: k[1], stmt: stmt}
			sites[k] = s
		}
		if s.stmt != stmt || (stmt && len(s.mutants) > 0) {
			continue
		}
		s.mutants = append(s.mutants, i)
	}
	// Nest the sites: sorted by start, outer before inner.
	all := make([]*site, 0, len(sites))
	for _, s := range sites {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].start != all[j].start {
			return all[i].start < all[j].start
		}
		return all[i].end > all[j].end
	})
	var top []*site
	var stack []*site
	for _, s := range all {
		for len(stack) > 0 && stack[len(stack)-1].end <= s.start {
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			top = append(top, s)
		} else {
			p := stack[len(stack)-1]
			p.children = append(p.children, s)
		}
		stack = append(stack, s)
	}
	r := schemaRenderer{src: src, ms: ms, ids: ids}
	out := r.render(0, len(src), top, -1)
	var placed []Placed
	for _, s := range all {
		first := lineAt(src, s.start)
		last := lineAt(src, s.end)
		for _, i := range s.mutants {
			placed = append(placed, Placed{ID: ids[i], FirstLine: first, LastLine: last})
		}
	}
	sort.Slice(placed, func(i, j int) bool { return placed[i].ID < placed[j].ID })
	return []byte(out), placed, nil
}

func lineAt(src []byte, off int) int { return strings.Count(string(src[:off]), "\n") + 1 }

type schemaRenderer struct {
	src []byte
	ms  []Mutant
	ids []int
}

// render writes src[lo:hi] with each site of kids replaced by its switch
// and, when mut ≥ 0, mutant mut's edit applied (it lies outside kids).
func (r schemaRenderer) render(lo, hi int, kids []*site, mut int) string {
	var b strings.Builder
	pos := lo
	edit := func(upTo int) {
		if mut >= 0 {
			m := r.ms[mut]
			if m.Offset >= pos && m.Offset+m.Len <= upTo {
				b.Write(r.src[pos:m.Offset])
				b.WriteString(m.Replacement)
				pos = m.Offset + m.Len
			}
		}
		b.Write(r.src[pos:upTo])
		pos = upTo
	}
	for _, k := range kids {
		edit(k.start)
		b.WriteString(r.schema(k))
		pos = k.end
	}
	edit(hi)
	return b.String()
}

func (r schemaRenderer) schema(s *site) string {
	if s.stmt {
		m := s.mutants[0]
		return fmt.Sprintf("if %s != %d { %s }", SchemaVar, r.ids[m], r.src[s.start:s.end])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "(func() bool { switch %s {", SchemaVar)
	for _, i := range s.mutants {
		var mutated string
		if m := r.ms[i]; m.Offset == s.start && m.Len == s.end-s.start {
			mutated = m.Replacement // the whole site replaced (check-drop)
		} else {
			mutated = r.render(s.start, s.end, s.children, i)
		}
		fmt.Fprintf(&b, " case %d: return %s;", r.ids[i], strings.ReplaceAll(mutated, "\n", " "))
	}
	fmt.Fprintf(&b, " }; return %s }())", r.render(s.start, s.end, s.children, -1))
	return b.String()
}
