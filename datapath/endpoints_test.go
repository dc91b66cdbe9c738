package datapath

import (
	"errors"
	"net/netip"
	"testing"
)

// loopbackIfindex is the device of a test run: the program sees
// skb->ifindex 1, as it sees the lxc of the pod it is attached for.
const loopbackIfindex = 1

// onLoopback is ep on the test run's device.
func onLoopback(ep testEndpoint) testEndpoint {
	ep.ifindex = loopbackIfindex
	return ep
}

// from-container takes the source endpoint from the lxc the packet arrived
// on (hoplab_lxc_ifindex): the pod's own address is that pod's (its
// identity), another address, even a local pod's, is "Invalid source ip".
// Deleting the endpoint, or moving it to another lxc, empties the slot,
// and the address lookup applies again.
func TestSourceEndpointByIfindex(t *testing.T) {
	dp := loadDatapath(t)
	events := openEvents(t, dp)
	addEndpoint(t, dp, onLoopback(pod3), false, false)

	fromPod3 := fromPod(pod3, pod4IP, 8080)
	run(t, dp.FromContainer, fromPod3.bytes(t), nil).assertVerdict(t, tcActOK)
	tr := traces(drain(t, events))
	if len(tr) == 0 || tr[0].ObsPoint != TraceFromLXC || tr[0].SrcIdentity != pod3.identity || tr[0].Source != pod3.id {
		t.Fatalf("traces %v, want from-lxc of pod3 (identity %d, endpoint %d)", tr, pod3.identity, pod3.id)
	}

	spoofed := fromPod(pod1, pod4IP, 8080)
	assertInvalidSource := func(when string) {
		t.Helper()
		res := run(t, dp.FromContainer, spoofed.bytes(t), nil)
		if d := drops(drain(t, events)); res.ret != tcActShot || len(d) != 1 || d[0].Reason != DropInvalidSIP {
			t.Fatalf("%s: pod1's address on pod3's lxc: verdict %d, drops %v; want Invalid source ip", when, res.ret, d)
		}
	}
	assertByAddress := func(when string) {
		t.Helper()
		run(t, dp.FromContainer, spoofed.bytes(t), nil).assertVerdict(t, tcActOK)
		if tr := traces(drain(t, events)); len(tr) == 0 || tr[0].SrcIdentity != pod1.identity {
			t.Fatalf("%s: traces %v, want pod1's identity %d found by address", when, tr, pod1.identity)
		}
	}
	assertInvalidSource("pod3 on the lxc")

	must(t, dp.Endpoints.Delete(pod3.addr()))
	assertByAddress("pod3 deleted")

	addEndpoint(t, dp, onLoopback(pod3), false, false)
	assertInvalidSource("pod3 back")
	addEndpoint(t, dp, pod3, false, false)
	assertByAddress("pod3 moved to ifindex 13")

	// Another pod's endpoint on the lxc takes the slot over.
	addEndpoint(t, dp, onLoopback(pod3), false, false)
	addEndpoint(t, dp, onLoopback(pod2), false, false)
	assertInvalidSource("pod2 on the lxc")
	run(t, dp.FromContainer, fromPod(pod2, pod4IP, 8080).bytes(t), nil).assertVerdict(t, tcActOK)
	if tr := traces(drain(t, events)); len(tr) == 0 || tr[0].SrcIdentity != pod2.identity {
		t.Fatalf("traces %v, want pod2's identity %d", tr, pod2.identity)
	}
}

// The PodCIDR reads back as set, keeps endpoints inside it, and cannot be
// set around an endpoint outside it; the zero Prefix unsets it.
func TestPodCIDR(t *testing.T) {
	dp := loadDatapath(t)
	if got, err := dp.PodCIDR(); err != nil || got != node1PodCIDR {
		t.Fatalf("PodCIDR() = %v, %v; want %v", got, err, node1PodCIDR)
	}
	outside := testEndpoint{ip: "10.1.2.99", id: 9, ifindex: 19, identity: 1009, mac: "0a:00:00:01:02:99", lxc: "0a:00:00:f1:02:99"}
	if err := dp.Endpoints.Upsert(outside.endpoint(false, false)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("endpoint outside the PodCIDR: %v, want ErrInvalid", err)
	}
	if err := dp.SetPodCIDR(netip.MustParsePrefix("10.1.2.0/24")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PodCIDR without pod1 and pod2: %v, want ErrInvalid", err)
	}
	must(t, dp.SetPodCIDR(netip.Prefix{}))
	if got, err := dp.PodCIDR(); err != nil || got.IsValid() {
		t.Fatalf("PodCIDR() unset = %v, %v", got, err)
	}
	must(t, dp.Endpoints.Upsert(outside.endpoint(false, false)))
	// A host bit in the prefix is masked off.
	must(t, dp.Endpoints.Delete(outside.addr()))
	must(t, dp.SetPodCIDR(netip.MustParsePrefix("10.1.1.77/16")))
	if got, _ := dp.PodCIDR(); got != netip.MustParsePrefix("10.1.0.0/16") {
		t.Errorf("PodCIDR() = %v, want 10.1.0.0/16", got)
	}
}
