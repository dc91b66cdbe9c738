package topologies

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

type decoder struct {
	file  string
	errs  []error
	warns []Warning
}

func (d *decoder) failAt(p Pos, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) fail(n *yaml.Node, format string, args ...any) { d.failAt(pos(n), format, args...) }

func (d *decoder) warnAt(p Pos, format string, args ...any) {
	d.warns = append(d.warns, Warning{File: d.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) result() error {
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i].(*Error), d.errs[j].(*Error)
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	if len(d.errs) == 1 {
		return d.errs[0]
	}
	if len(d.errs) > MaxErrors {
		// The first MaxErrors, then one line where the rest start.
		next := d.errs[MaxErrors].(*Error)
		more := &Error{File: d.file, Line: next.Line, Col: next.Col,
			Msg: fmt.Sprintf("%d more error(s) from here on (the first %d are listed)", len(d.errs)-MaxErrors, MaxErrors)}
		d.errs = append(d.errs[:MaxErrors:MaxErrors], more)
	}
	return errors.Join(d.errs...)
}

// MaxErrors is how many errors Parse lists before it sums up the rest.
const MaxErrors = 20

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func (d *decoder) checkNoAliases(n *yaml.Node) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.fail(n, "YAML anchors and aliases are not supported in topologies")
		return
	}
	for _, c := range n.Content {
		d.checkNoAliases(c)
	}
}

// fields checks that n is a mapping whose keys are all known and unique and
// returns the value node of each key. unsupported maps Cilium keys hoplab
// does not model to the reason.
func (d *decoder) fields(n *yaml.Node, what string, known []string, unsupported map[string]string) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, "%s: expected a mapping, got %s", what, kindName(n))
		return nil, false
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, "%s: keys must be plain strings", what)
			continue
		}
		key := k.Value
		if _, dup := out[key]; dup {
			d.fail(k, "%s: duplicate key %q", what, key)
			continue
		}
		if reason, ok := unsupported[key]; ok {
			d.fail(k, "%s: %q is not supported by hoplab: %s", what, key, reason)
			continue
		}
		if !contains(known, key) {
			d.fail(k, "%s: unknown key %q (known keys: %s)", what, key, strings.Join(known, ", "))
			continue
		}
		out[key] = v
	}
	return out, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// scalar returns n's text; it reports an error when n is not a non-empty
// scalar.
func (d *decoder) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, "%s: expected a single value, got %s", what, kindName(n))
		return "", false
	}
	if n.Tag == "!!null" || n.Value == "" {
		d.fail(n, "%s: value is empty", what)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) list(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "%s: expected a list, got %s", what, kindName(n))
		return nil, false
	}
	return n.Content, true
}

func (d *decoder) require(f map[string]*yaml.Node, n *yaml.Node, what string, keys ...string) bool {
	ok := true
	for _, k := range keys {
		if _, has := f[k]; !has {
			d.fail(n, "%s: missing required key %q", what, k)
			ok = false
		}
	}
	return ok
}
