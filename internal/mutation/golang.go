package mutation

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
)

// Go operators (besides OpRelFlip, OpRelBoundary, OpLogic, OpOffByOne and
// OpCheckDrop, shared with C).
const (
	OpNegDrop  = "negation-drop" // !x becomes x
	OpArith    = "arith-flip"    // + becomes -, and back
	OpContinue = "skip-drop"     // a continue or break removed
)

// Go returns the mutants of a Go source file (its tests excluded by the
// caller): comparisons negated and moved, && and ||, negations, + and -,
// small integer literals in comparisons, if conditions made false, and
// continue/break statements removed.
func Go(file string, src []byte) ([]Mutant, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []Mutant
	add := func(op string, pos token.Pos, n int, repl string) {
		off := fset.Position(pos).Offset
		m := Mutant{File: file, Operator: op, Offset: off, Len: n, Original: string(src[off : off+n]), Replacement: repl}
		position(&m, src)
		out = append(out, m)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.GenDecl:
			// Constants and variables at package level: tables, not logic.
			return x.Tok != token.CONST
		case *ast.BinaryExpr:
			op := x.Op.String()
			if r, ok := relFlip[op]; ok {
				add(OpRelFlip, x.OpPos, len(op), r)
			}
			if r, ok := relBoundary[op]; ok {
				add(OpRelBoundary, x.OpPos, len(op), r)
			}
			switch x.Op {
			case token.LAND:
				add(OpLogic, x.OpPos, 2, "||")
			case token.LOR:
				add(OpLogic, x.OpPos, 2, "&&")
			case token.ADD:
				if !isStringy(x.X) && !isStringy(x.Y) {
					add(OpArith, x.OpPos, 1, "-")
				}
			case token.SUB:
				add(OpArith, x.OpPos, 1, "+")
			}
			if _, rel := relFlip[op]; rel {
				for _, side := range []ast.Expr{x.X, x.Y} {
					if lit, ok := side.(*ast.BasicLit); ok && lit.Kind == token.INT {
						if v, err := strconv.ParseUint(lit.Value, 0, 32); err == nil && v <= 4096 {
							add(OpOffByOne, lit.Pos(), len(lit.Value), strconv.FormatUint(v+1, 10))
							if v > 0 {
								add(OpOffByOne, lit.Pos(), len(lit.Value), strconv.FormatUint(v-1, 10))
							}
						}
					}
				}
			}
		case *ast.UnaryExpr:
			if x.Op == token.NOT {
				add(OpNegDrop, x.OpPos, 1, "")
			}
		case *ast.IfStmt:
			// Checks: an if without an else is made false (its
			// condition's range replaced), except error plumbing ("err
			// != nil"), which the rel-flip of != covers.
			if x.Else == nil && !isErrCheck(x.Cond) {
				start, end := fset.Position(x.Cond.Pos()).Offset, fset.Position(x.Cond.End()).Offset
				add(OpCheckDrop, x.Cond.Pos(), end-start, "false")
			}
		case *ast.BranchStmt:
			if x.Tok == token.CONTINUE || x.Tok == token.BREAK {
				if x.Label == nil {
					add(OpContinue, x.Pos(), len(x.Tok.String()), "{}")
				}
			}
		}
		return true
	})
	numberTwins(out)
	return out, nil
}

// isStringy reports expressions that are obviously strings, where + is
// concatenation.
func isStringy(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return x.Kind == token.STRING
	case *ast.BinaryExpr:
		return isStringy(x.X) || isStringy(x.Y)
	case *ast.CallExpr:
		if sel, ok := x.Fun.(*ast.SelectorExpr); ok {
			return sel.Sel.Name == "String" || sel.Sel.Name == "Sprintf" || sel.Sel.Name == "Join"
		}
	}
	return false
}

// isErrCheck reports "err != nil" (any name ending in err or Err).
func isErrCheck(e ast.Expr) bool {
	b, ok := e.(*ast.BinaryExpr)
	if !ok || b.Op != token.NEQ {
		return false
	}
	id, ok := b.X.(*ast.Ident)
	nilY, ok2 := b.Y.(*ast.Ident)
	return ok && ok2 && nilY.Name == "nil" && (strings.HasSuffix(id.Name, "err") || strings.HasSuffix(id.Name, "Err"))
}
