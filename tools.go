//go:build tools

// Package hoplab pins modules that later packages import, so go.mod keeps
// their exact versions while those packages are being written, and the
// commands `make` runs with `go run` (actionlint for `make lint`).
package hoplab

import (
	_ "github.com/cavaliergopher/cpio"
	_ "github.com/cilium/ebpf"
	_ "github.com/digitalocean/go-qemu/qmp"
	_ "github.com/google/gopacket/layers"
	_ "github.com/onsi/ginkgo/v2"
	_ "github.com/onsi/gomega"
	_ "github.com/osrg/gobgp/v3/pkg/server"
	_ "github.com/rhysd/actionlint/cmd/actionlint"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/spf13/cobra"
	_ "github.com/ulikunitz/xz"
	_ "github.com/vishvananda/netlink"
	_ "gopkg.in/yaml.v3"
)
