//go:build vm

package tunnel

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/hoplab/hoplab/e2e/lab"
)

const topology = "tunnel"

// theLab is the suite's running topology, booted once in BeforeSuite.
var theLab = lab.Suite(topology)

func TestTunnel(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "tunnel")
}

var _ = Describe("tunnel fixtures, each compared hop by hop with its expectation", func() {
	lab.FixtureSpecs(topology, theLab, "tunnel")
})
