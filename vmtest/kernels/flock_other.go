//go:build !unix

package kernels

import "context"

// lockFile is a no-op where flock is unavailable; cache writes still use
// atomic renames.
func lockFile(ctx context.Context, path string) (func(), error) {
	return func() {}, ctx.Err()
}
