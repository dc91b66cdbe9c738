//go:build vm

package l7

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/hoplab/hoplab/e2e/journeymatch"
	"github.com/hoplab/hoplab/e2e/lab"
	"github.com/hoplab/hoplab/internal/journey"
	"github.com/hoplab/hoplab/tools/flowline"
	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/cluster"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

const topology = "l7"

var theLab = lab.Suite(topology)

var update = flag.Bool("update", false, "rewrite testdata/observe.golden")

func TestL7(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "l7")
}

const policyDenied = "Policy denied"

// exchange is one HTTP GET a spec makes, and what the cluster did with it.
type exchange struct {
	src, dst, path string
	sport          uint16
	c              lab.Connection
}

// get runs GET path from pod src to dst ("ip:port") from source port
// sport, observing the cluster.
func get(ctx SpecContext, src, dst, path string, sport uint16) *exchange {
	c, err := theLab().Connect(ctx, nodeapi.ClientAction{Pod: src, Kind: nodeapi.ClientHTTP, Dst: dst, Path: path, Sport: sport, Timeout: 3 * time.Second})
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("GET http://%s%s from %s:%d: %+v\n%s", dst, path, src, sport, c.Outcome, journey.RenderPacket(c.First))
	return &exchange{src: src, dst: dst, path: path, sport: sport, c: c}
}

// records returns the proxies' records of the exchange's flow.
func (x *exchange) records() []nodeapi.L7Event {
	var out []nodeapi.L7Event
	for _, e := range x.c.Events {
		if e.L7 != nil && e.L7.Src.Port() == x.sport {
			out = append(out, *e.L7)
		}
	}
	return out
}

// response returns the exchange's response record.
func (x *exchange) response() nodeapi.L7Event {
	for _, r := range x.records() {
		if r.Type == nodeapi.L7Response {
			return r
		}
	}
	Fail(fmt.Sprintf("no response record for %s:%d in %d events", x.src, x.sport, len(x.c.Events)))
	return nodeapi.L7Event{}
}

// agree checks that policy trace decides the exchange's request as the
// cluster did: ALLOWED for a 200, DENIED at the proxy with 403 for an
// "Access denied", DENIED at to-container for a flow that never connected.
func (x *exchange) agree() {
	top := theLab().Topology
	dst := netip.MustParseAddrPort(x.dst)
	tr, err := topologies.TraceRequest(top, x.src, dst.Addr().String(), dst.Port(), topologies.TCP,
		&topologies.HTTPRequest{Method: "GET", Path: x.path, Host: x.dst})
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Print(tr.String())
	o := x.c.Outcome
	switch {
	case o.OK:
		Expect(tr.Verdict).To(Equal(topologies.VerdictAllowed), "the proxy forwarded GET %s; trace:\n%s", x.path, tr)
	case o.Error == "403 Forbidden":
		Expect(tr.Verdict).To(Equal(topologies.VerdictDenied), "the proxy denied GET %s; trace:\n%s", x.path, tr)
		Expect(tr.Paths[0].DropPoint).To(Equal("proxy"))
		Expect(tr.Paths[0].HTTPStatus).To(Equal(403))
		Expect(x.response().Rule).To(Equal(l7Of(tr).Decision.Rule), "the proxy's and the trace's reasons")
	default:
		Expect(tr.Verdict).To(Equal(topologies.VerdictDenied), "GET %s got no answer (%s); trace:\n%s", x.path, o.Error, tr)
		Expect(tr.Paths[0].DropPoint).To(Equal("to-container"))
	}
	if o.OK {
		Expect(x.response().Rule).To(Equal(l7Of(tr).Decision.Rule), "the proxy's and the trace's rule")
	}
}

// l7Of is the proxy's step of a trace's first path.
func l7Of(tr *topologies.TraceResult) *topologies.TraceL7 {
	p := tr.Paths[0]
	if p.Egress.L7 != nil {
		return p.Egress.L7
	}
	Expect(p.Ingress.L7).NotTo(BeNil(), "no proxy in the trace:\n%s", tr)
	return p.Ingress.L7
}

var _ = Describe("L7 HTTP rules at the nodes' proxies", Label("l7"), func() {
	It("pod1 → pod4:8080 GET /public/a: node2's to-container hands the flow to the proxy, which forwards the request: 200 from pod4", func(ctx SpecContext) {
		x := get(ctx, "pod1", "10.1.2.40:8080", "/public/a", 41001)
		Expect(x.c.Outcome.OK).To(BeTrue(), "%+v", x.c.Outcome)
		Expect(x.c.Outcome.Reply).To(HavePrefix("hoplab pod4 10.1.2.40:8080 from "))
		Expect(x.c.First).To(HaveHop(journey.Proxy, OnNode("node2"), WithL7("GET", "/public/a", 200), Forwarded()))
		Expect(x.c.First).NotTo(HaveHop(journey.PodIngress))
		Expect(x.c.First.DeliveredTo).To(Equal("node2:proxy"))
		recs := x.records()
		Expect(recs).To(HaveLen(2))
		Expect(recs[0].Type).To(Equal(nodeapi.L7Request))
		Expect(recs[0].Verdict).To(Equal(nodeapi.L7Forwarded))
		r := x.response()
		Expect(r.Node).To(Equal("node2"))
		Expect(r.Status).To(Equal(200))
		Expect(r.Endpoint).To(Equal("pod4"))
		Expect(r.SrcName).To(Equal("pod1"))
		Expect(r.URL).To(Equal("http://10.1.2.40:8080/public/a"))
		Expect(r.Rule).To(ContainSubstring(`policy "backend-l7" ingress[0] toPorts[0] http[0]`))
		x.agree()
	})

	It("pod1 → pod4:8080 GET /private: the proxy answers 403 Access denied, and its DROPPED record names the rule's port 8080", func(ctx SpecContext) {
		x := get(ctx, "pod1", "10.1.2.40:8080", "/private", 41002)
		Expect(x.c.Outcome.OK).To(BeFalse())
		Expect(x.c.Outcome.Error).To(Equal("403 Forbidden"))
		Expect(x.c.Outcome.Reply).To(Equal("Access denied\r\n"))
		Expect(x.c.First).To(BeDroppedAt(journey.Proxy, policyDenied))
		Expect(x.c.First).To(HaveHop(journey.Proxy, OnNode("node2"), WithL7("GET", "/private", 403)))
		recs := x.records()
		Expect(recs).To(HaveLen(2))
		for _, r := range recs {
			Expect(r.Verdict).To(Equal(nodeapi.L7Dropped))
			Expect(r.Reason).To(Equal(policyDenied))
			Expect(r.ProxyPort).To(Equal(uint16(8080)))
			Expect(r.Rule).To(HavePrefix("port 8080/TCP: no HTTP rule of "))
		}
		Expect(x.response().Status).To(Equal(403))
		x.agree()
	})

	It("pod1 → Service 10.224.1.1:80 GET /private: DNAT at node1, denied by pod4's rules at node2's proxy, the 403 reverse-NATed back to the VIP", func(ctx SpecContext) {
		x := get(ctx, "pod1", "10.224.1.1:80", "/private", 41003)
		Expect(x.c.Outcome.Error).To(Equal("403 Forbidden"))
		Expect(x.c.First).To(HaveHop(journey.ToStack, OnNode("node1"), WithDNAT("10.1.2.40", 8080)))
		Expect(x.c.First).To(HaveHop(journey.Proxy, OnNode("node2"), WithL7("GET", "/private", 403)))
		Expect(x.response().Dst.String()).To(Equal("10.1.2.40:8080"))
		x.agree()
	})

	It("pod3 (intruder) → pod4:8080: no rule admits its identity, so its SYN is dropped at node2's to-container (Policy denied) as before, never proxied", func(ctx SpecContext) {
		x := get(ctx, "pod3", "10.1.2.40:8080", "/public/a", 41004)
		Expect(x.c.Outcome.OK).To(BeFalse())
		Expect(x.c.First).To(BeDroppedAt(journey.ToContainer, policyDenied))
		Expect(x.c.First).NotTo(HaveHop(journey.Proxy))
		Expect(x.records()).To(BeEmpty())
		x.agree()
	})

	It("pod2 (client) → pod4:8080: an L4 rule on the L7 port admits any request, still through the proxy", func(ctx SpecContext) {
		x := get(ctx, "pod2", "10.1.2.40:8080", "/private", 41005)
		Expect(x.c.Outcome.OK).To(BeTrue(), "%+v", x.c.Outcome)
		Expect(x.c.First).To(HaveHop(journey.Proxy, OnNode("node2"), WithL7("GET", "/private", 200)))
		Expect(x.response().Rule).To(HaveSuffix("no HTTP rules, any request"))
		x.agree()
	})

	It("egress: pod2 → pod5:80 GET /ok passes node1's proxy, which connects from node1; GET /nope is denied there", func(ctx SpecContext) {
		ok := get(ctx, "pod2", "10.1.2.50:80", "/ok", 41006)
		Expect(ok.c.Outcome.OK).To(BeTrue(), "%+v", ok.c.Outcome)
		Expect(ok.c.Outcome.Reply).To(HavePrefix("hoplab pod5 10.1.2.50:80 from 10.255.1.11:"))
		Expect(ok.c.First).To(HaveHop(journey.Proxy, OnNode("node1"), WithL7("GET", "/ok", 200), Forwarded()))
		Expect(ok.c.First).NotTo(HaveHop(journey.ToNetdev))
		Expect(ok.response().Direction).To(Equal("egress"))
		ok.agree()
		nope := get(ctx, "pod2", "10.1.2.50:80", "/nope", 41007)
		Expect(nope.c.Outcome.Error).To(Equal("403 Forbidden"))
		Expect(nope.c.First).To(BeDroppedAt(journey.Proxy, policyDenied))
		Expect(nope.response().Node).To(Equal("node1"))
		nope.agree()
	})

	It("node-update changes the L7 rules at run time; an established L4 flow keeps every answer", func(ctx SpecContext) {
		text, err := os.ReadFile(filepath.Join("..", "..", "topologies", "l7.yaml"))
		Expect(err).NotTo(HaveOccurred())
		changed := strings.Replace(string(text), `path: "/public/.*"`, `path: "/private.*"`, 1)
		changed = strings.Replace(changed, `toPorts: [{ports: [{port: "9090", protocol: TCP}]}]`,
			`toPorts: [{ports: [{port: "9090", protocol: TCP}], rules: {http: [{method: GET, path: "/public/.*"}]}}]`, 1)
		Expect(changed).NotTo(Equal(string(text)))
		top, err := topologies.Parse("topologies/l7.yaml", []byte(changed))
		Expect(err).NotTo(HaveOccurred())
		orig := theLab().Topology
		DeferCleanup(func(ctx context.Context) {
			Expect(theLab().Cluster.Update(ctx, orig)).To(Succeed())
		})

		By("an http-stream pod1 → pod4:9090 (L4 only) runs GET / back to back")
		stream := make(chan nodeapi.ClientResult, 1)
		go func() {
			defer GinkgoRecover()
			res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTPStream, Dst: "10.1.2.40:9090", Duration: 3 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			stream <- res
		}()
		time.Sleep(700 * time.Millisecond)

		By("node-update: 8080 allows /private.* instead of /public/.*, 9090 becomes an L7 port (GET /public/.*)")
		Expect(theLab().Cluster.Update(ctx, top)).To(Succeed())
		x := get(ctx, "pod1", "10.1.2.40:8080", "/private/x", 41008)
		Expect(x.c.Outcome.OK).To(BeTrue(), "%+v", x.c.Outcome)
		y := get(ctx, "pod1", "10.1.2.40:9090", "/", 41009)
		Expect(y.c.Outcome.Error).To(Equal("403 Forbidden"), "a new flow to 9090 goes to the proxy")

		var s nodeapi.ClientResult
		Eventually(stream).WithTimeout(10 * time.Second).Should(Receive(&s))
		o := s.Outcomes[0]
		Expect(o.OK).To(BeTrue(), "the established L4 stream across the update: %+v", o)
		Expect(o.Requests).To(BeNumerically(">", 10))
		GinkgoWriter.Printf("stream across the update: %d requests, longest wait %v\n", o.Requests, o.MaxWait)
		AddReportEntry("l7-update-stream", fmt.Sprintf("%d requests, longest wait %v", o.Requests, o.MaxWait))
	})

	It("observe prints the proxies' records as Hubble's http-request and http-response lines (testdata/observe.golden)", func(ctx SpecContext) {
		var events []cluster.Event
		for _, x := range []struct {
			src, dst, path string
			sport          uint16
		}{
			{"pod1", "10.1.2.40:8080", "/public/a", 41101},
			{"pod1", "10.1.2.40:8080", "/private", 41102},
			{"pod2", "10.1.2.50:80", "/nope", 41103},
		} {
			e := get(ctx, x.src, x.dst, x.path, x.sport)
			for _, ev := range e.c.Events {
				if ev.L7 != nil && ev.L7.Src.Port() == x.sport {
					events = append(events, ev)
				}
			}
		}
		top := theLab().Topology
		var live, norm strings.Builder
		base := time.Date(2026, 11, 23, 10, 31, 15, 0, time.UTC)
		for i, ev := range events {
			live.WriteString(flowline.FormatL7(*ev.L7, top) + "\n")
			r := *ev.L7
			r.Time, r.Latency = base.Add(time.Duration(i)*time.Millisecond), 0
			norm.WriteString(flowline.FormatL7(r, top) + "\n")
		}
		GinkgoWriter.Printf("hoplab observe --type l7:\n%s", live.String())
		AddReportEntry("l7-observe", live.String())
		path := filepath.Join("testdata", "observe.golden")
		if *update {
			Expect(os.WriteFile(path, []byte(norm.String()), 0o644)).To(Succeed())
		}
		want, err := os.ReadFile(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(norm.String()).To(Equal(string(want)), "observe lines (times and latencies zeroed) differ from %s", path)
	})

	It("bench: requests per second and latency of a proxied GET against the same GET without an L7 rule", Label("bench-l7"), func(ctx SpecContext) {
		d := time.Second // short in make e2e; make bench-l7 sets 10s
		if s := os.Getenv("HOPLAB_L7_BENCH"); s != "" {
			var err error
			d, err = time.ParseDuration(s)
			Expect(err).NotTo(HaveOccurred())
		}
		run := func(dst string) (rps float64, lat time.Duration) {
			res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTPStream, Dst: dst, Path: "/public/bench", Duration: d})
			Expect(err).NotTo(HaveOccurred())
			o := res.Outcomes[0]
			Expect(o.OK).To(BeTrue(), "%s: %+v", dst, o)
			Expect(o.Requests).To(BeNumerically(">", 0))
			return float64(o.Requests) / o.RTT.Seconds(), o.RTT / time.Duration(o.Requests)
		}
		direct, directLat := run("10.1.2.40:9090")
		proxied, proxiedLat := run("10.1.2.40:8080")
		line := fmt.Sprintf("kernel %s, %v each, one keep-alive connection pod1 (node1) -> pod4 (node2): direct %.0f req/s (%v per GET), through node2's proxy %.0f req/s (%v per GET): ratio %.2f, added latency %v",
			theLab().Cluster.Kernel(), d, direct, directLat.Round(time.Microsecond), proxied, proxiedLat.Round(time.Microsecond),
			proxied/direct, (proxiedLat - directLat).Round(time.Microsecond))
		GinkgoWriter.Println(line)
		AddReportEntry("l7-bench", line)
		fmt.Fprintln(os.Stderr, "l7-bench: "+line)
	})
})
