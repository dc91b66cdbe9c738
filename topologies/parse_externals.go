package topologies

import "gopkg.in/yaml.v3"

func (d *decoder) external(n *yaml.Node) *External {
	f, ok := d.fields(n, "external", []string{"name", "ip"}, nil)
	if !ok {
		return nil
	}
	e := &External{Pos: pos(n)}
	d.require(f, n, "external", "name", "ip")
	if v := f["name"]; v != nil {
		e.Name = d.name(v, "external name")
	}
	if v := f["ip"]; v != nil {
		e.IP = d.addr(v, "external ip")
	}
	return e
}

// boolean decodes true or false.
func (d *decoder) boolean(n *yaml.Node, what string) bool {
	s, ok := d.scalar(n, what)
	if !ok {
		return false
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	d.fail(n, "%s: %q is not true or false", what, s)
	return false
}
