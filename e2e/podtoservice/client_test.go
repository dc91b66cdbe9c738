//go:build vm

package podtoservice

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/hoplab/hoplab/vmtest/nodeapi"
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

	It("pod1 cannot reach pod4 on a port the L3L4 policy does not admit (TCP 9999)", func(ctx SpecContext) {
		res, err := theLab().Cluster.Run(ctx, nodeapi.ClientAction{Pod: "pod1", Kind: nodeapi.ClientTCP, Dst: "10.1.2.40:9999", Timeout: 1500 * time.Millisecond})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes).To(HaveLen(1))
		Expect(res.Outcomes[0].OK).To(BeFalse(), "connected to a denied port: %+v", res.Outcomes[0])
	})
})
