package nodeapi

import (
	"net/netip"
	"time"
)

// EventL7 carries an L7Event: what a node's L7 proxy did with one HTTP
// request or response. It streams with EventDatapath (Watch.Datapath).
const EventL7 = "l7-event"

// L7 record types (L7Event.Type), Hubble's.
const (
	L7Request  = "http-request"
	L7Response = "http-response"
)

// L7 verdicts (L7Event.Verdict).
const (
	// L7Forwarded: the request was allowed and forwarded (its response
	// came back).
	L7Forwarded = "FORWARDED"
	// L7Dropped: the request was denied; the proxy answered 403 "Access
	// denied" itself.
	L7Dropped = "DROPPED"
	// L7Error: the proxy could not parse the request or reach the
	// destination (the client got 400 or 502).
	L7Error = "ERROR"
)

// L7Event is one HTTP request or response of a proxied flow, as a node's
// proxy records it (Hubble's L7 flow): who talked to whom, what was asked,
// what the policy said, and, for a response, the status and latency.
type L7Event struct {
	// Node is the proxy's node; Time the guest's time of the record.
	Node string    `json:"node"`
	Time time.Time `json:"time"`
	// Type is L7Request or L7Response.
	Type string `json:"type"`
	// Verdict is L7Forwarded, L7Dropped or L7Error.
	Verdict string `json:"verdict"`
	// Reason is "Policy denied" for a dropped request and the error of an
	// L7Error; empty otherwise.
	Reason string `json:"reason,omitempty"`
	// Direction is the policy that redirected the flow: "ingress" (the
	// destination's) or "egress" (the source's).
	Direction string `json:"direction"`
	// Endpoint is the pod whose policy decided.
	Endpoint string `json:"endpoint"`
	// ProxyPort is the port the proxy took the flow on (the L7 rule's
	// port).
	ProxyPort uint16 `json:"proxy_port"`
	// Src is the client and Dst the original destination of the flow
	// (also for responses, which travel the other way).
	Src netip.AddrPort `json:"src"`
	Dst netip.AddrPort `json:"dst"`
	// SrcName and DstName are the pods' (or nodes') names, empty for
	// world; SrcIdentity and DstIdentity their identities as the node
	// resolves them.
	SrcName     string `json:"src_name,omitempty"`
	DstName     string `json:"dst_name,omitempty"`
	SrcIdentity uint32 `json:"src_identity"`
	DstIdentity uint32 `json:"dst_identity"`
	// Protocol is the request's ("HTTP/1.1").
	Protocol string `json:"protocol"`
	// Method, Host and Path are the request's; URL is
	// "http://" + Host + Path.
	Method string `json:"method"`
	Host   string `json:"host,omitempty"`
	Path   string `json:"path"`
	URL    string `json:"url"`
	// Rule names the rule that allowed the request, or for a denied one
	// the port whose rules it failed ("port 8080/TCP: no HTTP rule of ...
	// matches").
	Rule string `json:"rule,omitempty"`
	// Status is a response's HTTP status (403 for a denied request).
	Status int `json:"status,omitempty"`
	// Latency is a response's time from the request to the answer's
	// headers.
	Latency time.Duration `json:"latency,omitempty"`
}
