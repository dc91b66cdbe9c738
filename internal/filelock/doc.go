// Package filelock serialises processes that fill the same cache directory
// (kernels, initramfs images) with an exclusive flock on a lock file.
package filelock
