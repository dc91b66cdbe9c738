package topologies_test

import (
	"fmt"

	"github.com/hoplab/hoplab/topologies"
)

func ExampleTrace() {
	top, err := topologies.Builtin("policy")
	if err != nil {
		panic(err)
	}
	res, err := topologies.Trace(top, "pod3", "pod4", 8080, topologies.TCP)
	if err != nil {
		panic(err)
	}
	fmt.Print(res)
	// Output:
	// Tracing From: pod pod3 (10.1.1.30, identity 63713 [app=intruder], node1)
	//          To: pod4 port 8080/tcp
	//
	// -> Destination: pod pod4 (10.1.2.40, identity 19216 [app=backend], node2)
	//    Egress  at pod3 (from-container on node1), remote identity 19216:
	//      no policy selects pod3: enforcement off: allowed
	//    Ingress at pod4 (to-container on node2), remote identity 63713:
	//      selected by backend-l3l4: ingress enforcement on
	//      lookup L3L4      {identity 63713, port 8080, tcp}: not found
	//      lookup L4-only   {identity 0, port 8080, tcp}: not found
	//      lookup L3-only   {identity 63713, port 0, any}: not found
	//      lookup allow-all {identity 0, port 0, any}: not found
	//      no entry matches: default deny: Policy denied
	//    Verdict: DENIED at to-container (Policy denied)
	//
	// Final verdict: DENIED (Policy denied)
}

func ExampleTopology_EndpointPolicy() {
	top, err := topologies.Builtin("pod-to-service")
	if err != nil {
		panic(err)
	}
	ep, err := top.EndpointPolicy("pod4")
	if err != nil {
		panic(err)
	}
	fmt.Println("ingress enforced:", ep.IngressEnforced, "egress enforced:", ep.EgressEnforced)
	for _, e := range ep.Entries {
		fmt.Println(e.Direction, e.PolicyKey, e.Level(), e.Rules[0])
	}
	// Output:
	// ingress enforced: true egress enforced: false
	// ingress {identity 38586, port 8080, tcp} L3L4 policy "policies[0]" ingress[0] (line 25)
}
