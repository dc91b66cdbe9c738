package cluster

import (
	"testing"

	"github.com/onsi/ginkgo/v2"
)

// StartT takes Go tests, benchmarks and Ginkgo's GinkgoT().
var (
	_ TB = (*testing.T)(nil)
	_ TB = (*testing.B)(nil)
	_ TB = (ginkgo.GinkgoTInterface)(nil)
)
