package topologies

import "gopkg.in/yaml.v3"

func (d *decoder) router(n *yaml.Node) Router {
	r := Router{Pos: pos(n)}
	f, ok := d.fields(n, "router", []string{"name", "asn"}, nil)
	if !ok {
		return r
	}
	d.require(f, n, "router", "name", "asn")
	if v := f["name"]; v != nil {
		r.Name = d.name(v, "router name")
	}
	if v := f["asn"]; v != nil {
		r.ASN = d.asn(v, "router asn")
	}
	return r
}

func (d *decoder) node(n *yaml.Node) *Node {
	f, ok := d.fields(n, "node", []string{"name", "asn", "podCIDR", "uplink"}, nil)
	if !ok {
		return nil
	}
	nd := &Node{Pos: pos(n)}
	d.require(f, n, "node", "name", "asn", "podCIDR", "uplink")
	if v := f["name"]; v != nil {
		nd.Name = d.name(v, "node name")
	}
	if v := f["asn"]; v != nil {
		nd.ASN = d.asn(v, "node asn")
	}
	if v := f["podCIDR"]; v != nil {
		nd.PodCIDR = d.prefix(v, "node podCIDR", true)
	}
	if v := f["uplink"]; v != nil {
		nd.Uplink = d.uplink(v)
	}
	return nd
}

func (d *decoder) uplink(n *yaml.Node) Uplink {
	u := Uplink{Bond: DefaultBond}
	f, ok := d.fields(n, "uplink", []string{"address", "gateway", "bond"}, nil)
	if !ok {
		return u
	}
	d.require(f, n, "uplink", "address", "gateway")
	if v := f["address"]; v != nil {
		u.Address = d.prefix(v, "uplink address", false)
	}
	if v := f["gateway"]; v != nil {
		u.Gateway = d.addr(v, "uplink gateway")
	}
	if v := f["bond"]; v != nil {
		if s, ok := d.scalar(v, "uplink bond"); ok {
			switch BondMode(s) {
			case BondActiveBackup, BondBalanceXOR, Bond8023AD:
				u.Bond = BondMode(s)
			default:
				d.fail(v, "uplink bond: %q is not a bonding mode (want active-backup, balance-xor or 802.3ad)", s)
			}
		}
	}
	return u
}
