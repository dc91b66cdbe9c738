//go:build !unix

package filelock

import "context"

// Lock is a no-op where flock is unavailable; cache writes still use
// atomic renames.
func Lock(ctx context.Context, path string) (func(), error) {
	return func() {}, ctx.Err()
}
