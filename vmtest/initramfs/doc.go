// Package initramfs builds the initramfs hoplab's guests boot with: a newc
// cpio archive whose /init is the guest agent (a static Go binary), with the
// kernel modules the agent loads and any extra files a test needs.
//
// # Layout of the archive
//
//	/init                      the agent (Spec.Init), mode 0755
//	/lib/modules/<name>.ko     one uncompressed module per kernels.Module
//	/lib/modules/hoplab.order  module names in load order, one per line,
//	                           optionally followed by parameters (Spec.ModuleParams)
//	/dev /proc /sys /run /tmp /etc /root   empty directories (mount points)
//	…                          Spec.Files, with their parent directories
//
// There are no device nodes (Go's cpio writer cannot create them): the
// agent mounts devtmpfs on /dev itself. The agent loads the modules listed
// in hoplab.order with finit_module, in order; each name's file is
// /lib/modules/<name>.ko.
//
// # Caching
//
// Build names its output after a hash of every input's content (plus the
// layout version and compression), under CacheDir(), so a build whose
// inputs did not change returns the existing archive at once, and
// concurrent builders of the same inputs write identical files with atomic
// renames. BuildAgent builds the agent binary with `go build` into a stable
// path, where the go command's build ID check skips relinking when nothing
// changed.
//
// The archive is uncompressed by default: under TCG the kernel spends
// noticeable time gunzipping a large initramfs, while an uncompressed one
// costs nothing measurable (see CompressionGzip to trade disk for that).
package initramfs
