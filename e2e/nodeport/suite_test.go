//go:build vm

package nodeport

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/hoplab/hoplab/e2e/lab"
)

const topology = "nodeport"

// theLab is the suite's running topology, booted once in BeforeSuite.
var theLab = lab.Suite(topology)

func TestNodePort(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "nodeport")
}

var _ = Describe("nodeport fixtures, each compared hop by hop with its expectation", func() {
	lab.FixtureSpecs(topology, theLab, "nodeport")
})
