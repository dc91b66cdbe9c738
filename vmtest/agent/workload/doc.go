// Package workload runs the traffic of a pod inside its network namespace:
// listeners that answer (HTTP over TCP, UDP echo) for a topology's `listen:`
// entries, and the client actions the agent performs on request (TCP
// connect, HTTP GET, a stream of HTTP requests over one connection, UDP
// exchange, ICMP echo), each returning an Outcome.
//
// Every answer names the pod that produced it, so a test can tell which
// backend a Service connection reached.
package workload
