// Package lab runs one topology for one Ginkgo suite of the e2e tests: it
// boots the topology in VMs once (Start, from a BeforeAll or BeforeSuite),
// resets CT and metrics between specs (Lab.Reset), replays fixtures at the
// injection point their expectation names (Lab.Fixture, Lab.Replay), collects
// the journeys of the pods' replies (Lab.Trace), and keeps what a
// failing run needs: the run directory of the VMs, the consoles and every
// journey report, under the artifacts directory.
//
// Environment:
//
//	HOPLAB_SERIES          kernel series to boot (default: the topology's)
//	HOPLAB_E2E_ARTIFACTS   directory for the VMs' consoles, the harness's log,
//	                       every journey report and the kept run directory's
//	                       path (default: none; consoles go to GinkgoWriter,
//	                       the harness logs with slog's default logger)
//	HOPLAB_KEEP            keep the VMs' run directory even when every spec
//	                       passed (see package vmtest)
package lab
