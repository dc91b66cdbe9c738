package initramfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Prune removes archives in dir ("" means CacheDir()) that no Build has
// returned for longer than unused (Build refreshes an archive's mtime on
// every cache hit), and returns how many it removed.
func Prune(dir string, unused time.Duration) (int, error) {
	if dir == "" {
		d, err := CacheDir()
		if err != nil {
			return 0, err
		}
		dir = d
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("prune initramfs cache: %w", err)
	}
	cutoff := time.Now().Add(-unused)
	n := 0
	for _, e := range ents {
		name := e.Name()
		archive := strings.HasSuffix(name, ".cpio") || strings.HasSuffix(name, ".cpio.gz")
		partial := strings.HasPrefix(name, ".build-")
		if !e.Type().IsRegular() || (!archive && !partial) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err == nil {
			n++
		}
	}
	return n, nil
}
