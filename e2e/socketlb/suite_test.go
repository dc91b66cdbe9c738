//go:build vm

package socketlb

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/hoplab/hoplab/e2e/lab"
)

const topology = "socket-lb"

// theLab is the suite's running topology, booted once in BeforeSuite.
var theLab = lab.Suite(topology)

func TestSocketLB(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "socket-lb")
}

var _ = Describe("socket-lb fixtures, each compared hop by hop with its expectation", func() {
	lab.FixtureSpecs(topology, theLab, "socket-lb")
})
