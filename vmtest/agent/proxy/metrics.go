package proxy

import (
	"slices"
	"strings"
	"sync"
)

// Counter is one of the proxy's request counters: requests of a
// direction answered with a verdict and an HTTP status.
type Counter struct {
	// Direction is "ingress" or "egress" ("" for flows no policy
	// explains).
	Direction string
	// Verdict is nodeapi.L7Forwarded, L7Dropped or L7Error.
	Verdict string
	// Status is the HTTP status the client got.
	Status int
	// Requests counts them.
	Requests uint64
}

type counterKey struct {
	direction, verdict string
	status             int
}

type metrics struct {
	mu sync.Mutex
	m  map[counterKey]uint64
}

func (m *metrics) count(direction, verdict string, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[counterKey]uint64{}
	}
	m.m[counterKey{direction, verdict, status}]++
}

// Metrics returns the request counters since the last ResetMetrics,
// ordered by verdict, status and direction.
func (p *Proxy) Metrics() []Counter {
	p.metrics.mu.Lock()
	defer p.metrics.mu.Unlock()
	out := make([]Counter, 0, len(p.metrics.m))
	for k, v := range p.metrics.m {
		out = append(out, Counter{Direction: k.direction, Verdict: k.verdict, Status: k.status, Requests: v})
	}
	slices.SortFunc(out, func(a, b Counter) int {
		if c := strings.Compare(a.Verdict, b.Verdict); c != 0 {
			return c
		}
		if a.Status != b.Status {
			return a.Status - b.Status
		}
		return strings.Compare(a.Direction, b.Direction)
	})
	return out
}

// ResetMetrics zeroes the counters.
func (p *Proxy) ResetMetrics() {
	p.metrics.mu.Lock()
	defer p.metrics.mu.Unlock()
	p.metrics.m = nil
}
