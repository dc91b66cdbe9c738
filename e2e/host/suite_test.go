//go:build vm

package host

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/hoplab/hoplab/e2e/lab"
)

const topology = "host"

// theLab is the suite's running topology, booted once in BeforeSuite.
var theLab = lab.Suite(topology)

func TestHost(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "host")
}
