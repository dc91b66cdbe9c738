//go:build vm

package podtoservice

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

var _ = Describe("a real client in pod1", Label("client"), func() {
	It("HTTP GET http://10.224.1.1:80/ from pod1 is answered by pod4 on 10.1.2.40:8080", func(ctx SpecContext) {
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientHTTP, Dst: "10.224.1.1:80", Count: 3})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes).To(HaveLen(3))
		for _, o := range res.Outcomes {
			Expect(o.OK).To(BeTrue(), "HTTP GET: %s", o.Error)
			Expect(o.Reply).To(HavePrefix("hoplab pod4 10.1.2.40:8080 from 10.1.1.10:"))
			Expect(o.Local).To(HavePrefix("10.1.1.10:"))
		}
	})

	It("pod1 cannot reach pod4 on a port the L3L4 policy does not admit (TCP 9999, where pod4 listens)", func(ctx SpecContext) {
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientTCP, Dst: "10.1.2.40:9999", Timeout: 1500 * time.Millisecond})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes).To(HaveLen(1))
		o := res.Outcomes[0]
		Expect(o.OK).To(BeFalse(), "connected to a denied port: %+v", o)
		// pod4 listens on 9999: no answer at all, not a refusal, and
		// node2 counted the SYNs as Policy denied.
		Expect(o.Error).NotTo(ContainSubstring("refused"), "a RST came back: the port is closed, not denied")
		rows, err := theLab().Cluster.Client("node2").Metrics(ctx)
		Expect(err).NotTo(HaveOccurred())
		var denied uint64
		for _, r := range rows {
			if r.Reason == "Policy denied" && r.Direction == "INGRESS" {
				denied += r.Packets
			}
		}
		Expect(denied).To(BeNumerically(">=", 1), "node2 metrics: %+v", rows)
	})
})
