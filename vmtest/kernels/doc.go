// Package kernels is hoplab's catalogue of guest kernels: which Debian kernel
// packages each series is pinned to, how they are fetched into a local cache,
// and what the VM harness gets out of them (a bootable image, an uncompressed
// vmlinux for fast PVH boot, and the kernel modules the guest agent loads).
//
// # Catalogue
//
// The series are 5.10, 6.1, 6.12 and 7.2, each in two flavours: "cloud"
// (Debian's -cloud-amd64 build, small and quick to boot) and "generic"
// (the -amd64 build). The default is DefaultSeries in DefaultFlavour.
// Every package is pinned by name, version, pool path, size and sha256 in the
// checked-in kernels.lock.json; Fetch refuses a .deb whose sha256 differs.
//
// When a pinned package has left the mirror (security suites replace their
// kernels over time), Fetch asks a Resolver for the newest package of the same
// series, flavour and suite, logs the change with slog.Warn, rewrites the lock
// file and carries on.
//
// # Cache
//
// Everything lives under CacheDir():
//
//	$HOPLAB_CACHE/kernels            (HOPLAB_CACHE replaces $XDG_CACHE_HOME/hoplab)
//	$XDG_CACHE_HOME/hoplab/kernels   (default ~/.cache/hoplab/kernels)
//	  debs/<package>_<version>_amd64.deb     verified downloads
//	  <release>_<version>/                    one extracted kernel
//	    vmlinuz        the image as shipped (bzImage)
//	    vmlinux        uncompressed ELF, present when it has a PVH entry note
//	    config         the kernel's build configuration (absent for 7.x)
//	    modules/*.ko   the guest's modules and their dependencies, decompressed
//	    kernel.json    manifest; its presence marks the directory complete
//	  user/<hash>/                            vmlinux and modules of FromPath kernels
//	  .locks/                                 flock files, one per kernel
//	  kernels.lock.json                       the lock, when hoplab does not run
//	                                          from its source tree (else the
//	                                          checked-in file is read and updated)
//
// Kernel directories are built in a temporary directory and renamed into
// place while holding a per-kernel file lock, so parallel test processes can
// call Fetch at the same time. Only the wanted modules (DefaultModules plus
// Options.ExtraModules) and their dependencies, read from each module's
// .modinfo, are taken out of the packages; modules a kernel has built in
// (listed in modules.builtin) are reported in Kernel.Builtin. Debian's split
// 7.x packages ship no modules.builtin, so there a module the packages lack
// is assumed built in, with a warning.
//
// # Environment
//
//	HOPLAB_CACHE                  cache root (kernels live in $HOPLAB_CACHE/kernels)
//	HOPLAB_KERNEL                 a user's own kernel, "/path/to/bzImage[,modules-dir]" (see FromEnv)
//	HOPLAB_KERNELS_LOCK           path of the lock file to use and update
//	HOPLAB_DEBIAN_MIRROR          Debian archive base URL (default: from /etc/apt/sources*)
//	HOPLAB_DEBIAN_SECURITY_MIRROR Debian security archive base URL (default: from /etc/apt/sources*)
//
// Kernels older than the catalogue (4.19, 5.4) cannot be downloaded here; a
// user runs them with HOPLAB_KERNEL, see FromPath.
package kernels
