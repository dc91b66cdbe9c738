package topologies

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaults for omitted fields.
const (
	DefaultKernel = "6.1"
	DefaultMode   = DirectRouting
	DefaultBond   = BondBalanceXOR
)

// Load reads, parses and validates the topology file at path.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a topology. filename is used in messages only.
// On failure the error joins one *Error per problem (each matching
// ErrInvalid), in file order.
func Parse(filename string, data []byte) (top *Topology, err error) {
	defer func() {
		// The YAML library and our walk are expected not to panic; if
		// they do, the input is still only a bad topology.
		if r := recover(); r != nil {
			top = nil
			err = &Error{File: filename, Msg: fmt.Sprintf("internal error while parsing: %v", r)}
		}
	}()
	root, err := decodeDocument(filename, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: filename}
	d.checkNoAliases(root)
	if len(d.errs) > 0 {
		return nil, d.result()
	}
	t := d.topology(root)
	if len(d.errs) > 0 {
		return nil, d.result()
	}
	t.File = filename
	v := &validator{decoder: d, t: t}
	v.validate()
	if len(d.errs) > 0 {
		return nil, d.result()
	}
	t.Warnings = d.warns
	return t, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

var yamlParserErrors = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

func decodeDocument(filename string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: filename, Line: 1, Col: 1, Msg: "empty topology"}
		}
		return nil, yamlError(filename, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: filename, Line: extra.Line, Col: extra.Column, Msg: "more than one YAML document; a topology is one document"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(filename, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: filename, Line: 1, Col: 1, Msg: "empty topology"}
	}
	return doc.Content[0], nil
}

// yamlError locates an error of the YAML library: "yaml: line N: msg"
// becomes file:N:1: msg, on line 1 when the library names none.
func yamlError(filename string, err error) *Error {
	e := &Error{File: filename, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Col = 1
		e.Msg = m[2]
	}
	// yaml.v3 reports parser (as opposed to scanner) errors with a
	// 0-based line; its parser messages are disjoint from the scanner's.
	if yamlParserErrors[e.Msg] {
		e.Line++
	}
	if e.Line == 0 {
		e.Line, e.Col = 1, 1
	}
	return e
}

func (d *decoder) topology(n *yaml.Node) *Topology {
	f, ok := d.fields(n, "topology", []string{"name", "kernel", "mode", "socketLB", "router", "nodes", "pods", "externals", "services", "policies"}, nil)
	if !ok {
		return nil
	}
	t := &Topology{Kernel: DefaultKernel, Mode: DefaultMode}
	d.require(f, n, "topology", "name", "router", "nodes")
	if v := f["name"]; v != nil {
		t.Name = d.name(v, "name")
	}
	if v := f["kernel"]; v != nil {
		if s, ok := d.scalar(v, "kernel"); ok {
			if !kernelRE.MatchString(s) {
				d.fail(v, "kernel: %q is not a kernel series or version (like \"6.1\" or \"6.1.192\")", s)
			}
			t.Kernel, t.KernelPos = s, pos(v)
		}
	}
	if v := f["mode"]; v != nil {
		if s, ok := d.scalar(v, "mode"); ok {
			switch Mode(s) {
			case DirectRouting, Tunnel:
				t.Mode = Mode(s)
			default:
				d.fail(v, "mode: %q is not a mode (want direct-routing or tunnel)", s)
			}
		}
	}
	if v := f["socketLB"]; v != nil {
		t.SocketLB = d.boolean(v, "socketLB")
	}
	if v := f["router"]; v != nil {
		t.Router = d.router(v)
	}
	if v := f["nodes"]; v != nil {
		items, _ := d.list(v, "nodes")
		for _, it := range items {
			if nd := d.node(it); nd != nil {
				t.Nodes = append(t.Nodes, nd)
			}
		}
		if len(items) == 0 {
			d.fail(v, "nodes: at least one node is required")
		}
	}
	if v := f["pods"]; v != nil {
		items, _ := d.list(v, "pods")
		for _, it := range items {
			if p := d.pod(it); p != nil {
				t.Pods = append(t.Pods, p)
			}
		}
	}
	if v := f["externals"]; v != nil {
		items, _ := d.list(v, "externals")
		for _, it := range items {
			if e := d.external(it); e != nil {
				t.Externals = append(t.Externals, e)
			}
		}
	}
	if v := f["services"]; v != nil {
		items, _ := d.list(v, "services")
		for _, it := range items {
			if s := d.service(it); s != nil {
				t.Services = append(t.Services, s)
			}
		}
	}
	if v := f["policies"]; v != nil {
		items, _ := d.list(v, "policies")
		for i, it := range items {
			if p := d.policy(it, i); p != nil {
				t.Policies = append(t.Policies, p)
			}
		}
	}
	return t
}

var kernelRE = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)
