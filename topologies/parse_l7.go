package topologies

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	unsupportedL7Keys = map[string]string{
		"kafka": "only HTTP rules are modelled", "dns": "only HTTP rules are modelled",
		"l7proto": "only HTTP rules are modelled", "l7": "only HTTP rules are modelled",
	}
	unsupportedHTTPKeys = map[string]string{
		"headerMatches": "use headers: [\"Name: value\"]",
	}
	// headerNameRE is an HTTP field name (RFC 9110 token).
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// l7Rules parses a toPorts entry's rules: {http: [{method, path, host,
// headers}]}. Each expression must compile (Go's RE2 syntax, anchored at
// both ends); the ports the rules apply to must be TCP (checked by the
// caller, which knows them).
func (d *decoder) l7Rules(n *yaml.Node) *L7Rules {
	r := &L7Rules{Pos: pos(n)}
	f, ok := d.fields(n, "rules", []string{"http"}, unsupportedL7Keys)
	if !ok {
		return r
	}
	if len(n.Content) == 0 {
		// Only when nothing else is wrong: an unsupported key is reason
		// enough.
		d.require(f, n, "rules", "http")
	}
	v := f["http"]
	if v == nil {
		return r
	}
	items, _ := d.list(v, "http")
	if len(items) == 0 {
		d.fail(v, "http: an empty list allows no request; write [{}] to allow every request, or omit rules")
	}
	for _, it := range items {
		r.HTTP = append(r.HTTP, d.httpRule(it))
	}
	return r
}

func (d *decoder) httpRule(n *yaml.Node) HTTPRule {
	h := HTTPRule{Pos: pos(n)}
	f, ok := d.fields(n, "http rule", []string{"method", "path", "host", "headers"}, unsupportedHTTPKeys)
	if !ok {
		return h
	}
	for _, x := range []struct {
		key string
		out *string
	}{{"method", &h.Method}, {"path", &h.Path}, {"host", &h.Host}} {
		v := f[x.key]
		if v == nil {
			continue
		}
		s, ok := d.scalar(v, "http "+x.key)
		if !ok {
			continue
		}
		if _, err := compileHTTPRegexp(s); err != nil {
			d.fail(v, "http %s: %q is not a valid regular expression: %s", x.key, s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			continue
		}
		*x.out = s
	}
	if v := f["headers"]; v != nil {
		items, _ := d.list(v, "headers")
		for _, it := range items {
			s, ok := d.scalar(it, "header")
			if !ok {
				continue
			}
			name, value, has := strings.Cut(s, ":")
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			if !headerNameRE.MatchString(name) {
				d.fail(it, "header: %q: want \"Name\" or \"Name: value\" with a valid header name", s)
				continue
			}
			h.Headers = append(h.Headers, HeaderMatch{Name: name, Value: value, HasValue: has})
		}
	}
	// Cannot fail: every expression compiled above.
	_ = h.compile()
	return h
}
