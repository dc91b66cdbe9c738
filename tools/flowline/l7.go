package flowline

import (
	"fmt"
	"strings"
	"time"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// Error is the verdict of an L7 record the proxy could not complete (a
// request it could not parse, a destination it could not reach).
const Error = "ERROR"

// L7Verdict returns the flow verdict of an L7 record: FORWARDED, DROPPED or
// ERROR.
func L7Verdict(e nodeapi.L7Event) string {
	switch e.Verdict {
	case nodeapi.L7Dropped:
		return Dropped
	case nodeapi.L7Error:
		return Error
	}
	return Forwarded
}

// FormatL7 renders one L7 record of a node's proxy as Hubble prints an L7
// flow:
//
//	Nov 23 10:31:15.123 node2 pod1:40000 (ID:38586) -> pod4:8080 (ID:19216) http-request FORWARDED (HTTP/1.1 GET http://10.1.2.40:8080/public/a)
//	Nov 23 10:31:15.126 node2 pod4:8080 (ID:19216) -> pod1:40000 (ID:38586) http-response FORWARDED (HTTP/1.1 200 3ms (GET http://10.1.2.40:8080/public/a))
//	Nov 23 10:31:15.130 node2 pod1:40002 (ID:38586) -> pod4:8080 (ID:19216) http-request DROPPED (Policy denied, port 8080/TCP, HTTP/1.1 GET http://10.1.2.40:8080/private)
//	Nov 23 10:31:15.130 node2 pod4:8080 (ID:19216) -> pod1:40002 (ID:38586) http-response DROPPED (HTTP/1.1 403 0ms (GET http://10.1.2.40:8080/private))
//
// A response travels back, so its source is the original destination.
// The latency is in whole milliseconds. top (may be nil) names pods and
// nodes.
func FormatL7(e nodeapi.L7Event, top *topologies.Topology) string {
	src := peer(top, e.Node, e.Src.Addr().String(), e.Src.Port(), e.SrcIdentity)
	dst := peer(top, e.Node, e.Dst.Addr().String(), e.Dst.Port(), e.DstIdentity)
	request := fmt.Sprintf("%s %s", orDash(e.Method), orDash(e.URL))
	verdict := L7Verdict(e)
	var extra []string
	if e.Type == nodeapi.L7Response {
		src, dst = dst, src
		if verdict == Error {
			extra = append(extra, orDash(e.Reason))
		}
		extra = append(extra, fmt.Sprintf("%s %d %dms (%s)", e.Protocol, e.Status, e.Latency/time.Millisecond, request))
	} else {
		if verdict == Dropped {
			extra = append(extra, orDash(e.Reason), fmt.Sprintf("port %d/TCP", e.ProxyPort))
		}
		extra = append(extra, e.Protocol+" "+request)
	}
	return fmt.Sprintf("%s %s %s -> %s %s %s (%s)", e.Time.Format(TimeLayout), e.Node, src, dst, e.Type, verdict, strings.Join(extra, ", "))
}
