// Package journeymatch holds Gomega matchers over packet journeys (package
// internal/journey), for the e2e suites:
//
//	Expect(j).To(HaveHop("from-container", OnNode("node1"), WithDNAT("10.1.2.40", 8080)))
//	Expect(j).To(BeDroppedAt("to-container", "Policy denied"))
//	Expect(j).To(BeDeliveredTo("pod4"))
//	Expect(j).To(EqualJourney(expected))
//
// The actual value is a journey.Packet or a *journey.Packet. Every failure
// message prints the whole observed journey as journey.Diff renders it: one
// block per hop, fields that differ from the expectation marked '!' with their
// expected value, missing hops inserted where they were expected, followed by
// the list of differences.
package journeymatch
