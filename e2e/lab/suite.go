package lab

import (
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/hoplab/hoplab/internal/testreq"
)

// Suite registers the lifecycle of a suite that runs topology (a shipped
// topology's name or a path): a BeforeSuite that boots it once (skipped
// with a reason, or failed in CI, without QEMU), a BeforeEach that resets
// CT and metrics, and a ReportAfterEach that keeps the VMs' run directory
// when a spec failed. It returns the accessor of the running lab for the
// specs. Call it once, at package level, while building the spec tree.
func Suite(topology string) func() *Lab {
	var l *Lab
	ginkgo.BeforeSuite(func() {
		testreq.Command(ginkgo.GinkgoTB(), "qemu-system-x86_64", "apt-get install qemu-system-x86")
		var err error
		l, err = Start(topology)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
	})
	ginkgo.BeforeEach(func(ctx ginkgo.SpecContext) {
		gomega.Expect(l.Reset(ctx)).To(gomega.Succeed())
	})
	ginkgo.ReportAfterEach(func(r ginkgo.SpecReport) {
		if r.Failed() && l != nil {
			l.MarkFailed()
		}
	})
	return func() *Lab { return l }
}
