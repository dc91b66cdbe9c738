package datapath

import (
	"testing"
)

// The dump APIs read back what was written, in order.
func TestListings(t *testing.T) {
	dp := loadDatapath(t)
	must(t, dp.Services.Upsert(webService(Backend{ID: 1, Addr: pod4IP, Port: 8080}, Backend{ID: 2, Addr: pod5IP, Port: 8080})))
	must(t, dp.Services.Upsert(Service{VIP: vip, Port: 53, Proto: ProtoUDP, ID: 2}))
	svcs, err := dp.Services.List()
	must(t, err)
	if len(svcs) != 2 || svcs[0].Port != 53 || len(svcs[1].Backends) != 2 || svcs[1].Backends[1].Addr != pod5IP {
		t.Fatalf("services %v", svcs)
	}
	t.Logf("services: %v", svcs)

	t.Log("shrinking a service removes its stale slots")
	must(t, dp.Services.Upsert(webService(Backend{ID: 2, Addr: pod5IP, Port: 8080})))
	svc, err := dp.Services.Lookup(vip, 80, ProtoTCP)
	must(t, err)
	if len(svc.Backends) != 1 {
		t.Fatalf("after shrink: %v", svc)
	}
	must(t, dp.Services.Delete(vip, 80, ProtoTCP))
	if _, err := dp.Services.Lookup(vip, 80, ProtoTCP); err == nil {
		t.Error("service still there after Delete")
	}

	eps, err := dp.Endpoints.List()
	must(t, err)
	if len(eps) != 2 || eps[0].IP != pod1.addr() || eps[1].ID != pod2.id {
		t.Fatalf("endpoints %v", eps)
	}
	must(t, dp.Policy.Allow(L4OnlyKey(pod1.id, Ingress, 8080, ProtoTCP)))
	must(t, dp.Policy.Deny(L3OnlyKey(pod1.id, Egress, 7)))
	rules, err := dp.Policy.Entries()
	must(t, err)
	if len(rules) != 2 || rules[0].Key.Direction != Ingress || !rules[1].Entry.Deny {
		t.Fatalf("policy %v", rules)
	}
	ipc, err := dp.IPCache.Entries()
	must(t, err)
	if len(ipc) != 4 || ipc[0].Prefix.String() != "10.1.1.10/32" {
		t.Fatalf("ipcache %v", ipc)
	}
	if TraceFromNetwork.JourneyPoint() != "from-netdev" || TraceToLXC.JourneyPoint() != "to-container" {
		t.Error("journey point names")
	}
}
