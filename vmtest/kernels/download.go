package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
)

// ErrChecksum is returned when a downloaded or cached .deb does not match
// the sha256 pinned in the lock.
var ErrChecksum = errors.New("sha256 mismatch")

// ErrGone is returned when the mirror no longer serves a pinned package
// (HTTP 404 or 410); Fetch then resolves a newer one.
var ErrGone = errors.New("package has left the mirror")

// ChecksumError names the file whose sha256 differs from the lock.
type ChecksumError struct {
	// File is the path or package file name that failed verification.
	File string
	// Want is the sha256 pinned in the lock.
	Want string
	// Got is the sha256 of the file's contents.
	Got string
}

// Error implements error.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 mismatch: lock pins %s, file has %s", e.File, e.Want, e.Got)
}

// Is makes errors.Is(err, ErrChecksum) true.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// debPath is where pkg is cached.
func debPath(cacheDir string, pkg Package) string {
	return filepath.Join(cacheDir, "debs", path.Base(pkg.Filename))
}

// verifyFile checks the sha256 (and size) of file against pkg.
func verifyFile(file string, pkg Package) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("verify %s: %w", pkg.Name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("verify %s: %w", file, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != pkg.SHA256 {
		return &ChecksumError{File: file, Want: pkg.SHA256, Got: got}
	}
	return nil
}

// ensureDeb returns the path of pkg's verified .deb in the cache, downloading
// it from base when it is not there yet.
func (f *fetcher) ensureDeb(ctx context.Context, base string, pkg Package) (string, error) {
	dst := debPath(f.cacheDir, pkg)
	if st, err := os.Stat(dst); err == nil && st.Size() == pkg.Size {
		if err := verifyFile(dst, pkg); err == nil {
			return dst, nil
		}
		f.log.Warn("cached kernel package is corrupt, downloading it again", "file", dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("kernel cache: %w", err)
	}
	url := base + "/" + pkg.Filename
	// Give up on a mirror that stops sending: cancel the request when no
	// byte arrived for stallTimeout.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stall := time.AfterFunc(stallTimeout, cancel)
	defer stall.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", pkg.Name, err)
	}
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", pkg.Name, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return "", fmt.Errorf("download %s %s from %s: %w", pkg.Name, pkg.Version, url, ErrGone)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("download %s from %s: HTTP %s", pkg.Name, url, resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return "", fmt.Errorf("download %s: %w", pkg.Name, err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	w := io.MultiWriter(tmp, h, f.progress(pkg), stallReset{stall})
	n, err := io.Copy(w, resp.Body)
	if err != nil && ctx.Err() != nil && !stall.Stop() {
		err = fmt.Errorf("no data for %v: %w", stallTimeout, err)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("download %s: %w", pkg.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != pkg.SHA256 {
		return "", &ChecksumError{File: path.Base(pkg.Filename) + " (from " + url + ")", Want: pkg.SHA256, Got: got}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("download %s: %w", pkg.Name, err)
	}
	f.log.Info("downloaded kernel package", "package", pkg.Name, "version", pkg.Version,
		"bytes", n, "took", time.Since(start).Round(time.Millisecond))
	return dst, nil
}

// stallTimeout is how long a download may go without receiving a byte.
const stallTimeout = 60 * time.Second

// stallReset restarts the stall timer on every write.
type stallReset struct{ t *time.Timer }

// Write implements io.Writer.
func (s stallReset) Write(b []byte) (int, error) {
	s.t.Reset(stallTimeout)
	return len(b), nil
}

// progress returns the writer that reports download progress: a progress
// bar on a terminal, periodic slog lines otherwise.
func (f *fetcher) progress(pkg Package) io.Writer {
	if f.quiet {
		return io.Discard
	}
	if isTerminal(os.Stderr) {
		return progressbar.NewOptions64(pkg.Size,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(pkg.Name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	f.log.Info("downloading kernel package", "package", pkg.Name, "version", pkg.Version, "bytes", pkg.Size)
	return &logProgress{log: f.log, name: pkg.Name, total: pkg.Size, last: time.Now()}
}

// logProgress logs a line at most every few seconds while a download runs.
type logProgress struct {
	log   *slog.Logger
	name  string
	total int64
	done  int64
	last  time.Time
}

// Write implements io.Writer.
func (p *logProgress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if time.Since(p.last) >= 5*time.Second {
		p.last = time.Now()
		p.log.Info("downloading kernel package", "package", p.name, "done", p.done, "of", p.total)
	}
	return len(b), nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
