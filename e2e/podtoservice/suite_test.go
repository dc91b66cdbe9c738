//go:build vm

package podtoservice

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/hoplab/hoplab/e2e/lab"
)

const topology = "pod-to-service"

// theLab is the suite's running topology, booted once in BeforeSuite.
var theLab = lab.Suite(topology)

func TestPodToService(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "pod-to-service")
}

var _ = Describe("pod-to-service fixtures, each compared hop by hop with its expectation", func() {
	lab.FixtureSpecs(topology, theLab, "journey")
})
