package kernels

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/ulikunitz/xz"
)

// ErrBadDeb is returned for a .deb that is not a Debian binary package.
var ErrBadDeb = errors.New("not a Debian package")

const arMagic = "!<arch>\n"

// walkDeb streams the data.tar.* member of the .deb at path and calls fn for
// every entry of the data tarball; fn reads the entry's contents from r.
// Member names are as in the tarball but without a leading "./". Errors do
// not name the file: the caller does.
func walkDeb(ctx context.Context, path string, fn func(hdr *tar.Header, r io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the caller names the file
		}
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	magic := make([]byte, len(arMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != arMagic {
		return fmt.Errorf("%w (no ar header)", ErrBadDeb)
	}
	for {
		var hdr [60]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w (no data.tar member)", ErrBadDeb)
			}
			return fmt.Errorf("read ar header: %w", err)
		}
		if string(hdr[58:60]) != "`\n" {
			return fmt.Errorf("%w (bad ar member header)", ErrBadDeb)
		}
		name := strings.TrimRight(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("%w (bad ar member size)", ErrBadDeb)
		}
		body := io.LimitReader(br, size)
		if strings.HasPrefix(name, "data.tar") {
			return walkTar(ctx, name, body, fn)
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return err
		}
		if size%2 == 1 {
			if _, err := br.Discard(1); err != nil {
				return err
			}
		}
	}
}

// walkTar decompresses a data.tar.{xz,zst,gz} stream and walks its entries.
func walkTar(ctx context.Context, member string, r io.Reader, fn func(hdr *tar.Header, r io.Reader) error) error {
	dr, wait, err := decompressor(ctx, member, r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(dr)
	var walkErr error
	for {
		if err := ctx.Err(); err != nil {
			walkErr = err
			break
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			walkErr = fmt.Errorf("%s: %w", member, err)
			break
		}
		hdr.Name = strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if err := fn(hdr, tr); err != nil {
			walkErr = err
			break
		}
	}
	// Drain so an external decompressor never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, dr)
	if err := wait(); err != nil && walkErr == nil {
		walkErr = fmt.Errorf("%s: %w", member, err)
	}
	return walkErr
}

// decompressor returns a reader of the decompressed member. It prefers the
// xz/zstd programs when installed (several times faster than pure Go) and
// falls back to pure Go for xz and gzip. wait reports the decompressor's
// final status.
func decompressor(ctx context.Context, member string, r io.Reader) (io.Reader, func() error, error) {
	noWait := func() error { return nil }
	switch {
	case strings.HasSuffix(member, ".xz"):
		if p, err := exec.LookPath("xz"); err == nil {
			return pipeThrough(ctx, r, p, "-T0", "-dc")
		}
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", member, err)
		}
		return xr, noWait, nil
	case strings.HasSuffix(member, ".zst"):
		p, err := exec.LookPath("zstd")
		if err != nil {
			return nil, nil, fmt.Errorf("%s is zstd-compressed and the zstd program is not installed (apt-get install zstd): %w", member, err)
		}
		return pipeThrough(ctx, r, p, "-dc")
	case strings.HasSuffix(member, ".gz"):
		gr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", member, err)
		}
		return gr, noWait, nil
	case member == "data.tar":
		return r, noWait, nil
	}
	return nil, nil, fmt.Errorf("%w: unsupported member %s", ErrBadDeb, member)
}

// pipeThrough runs prog args with r on stdin and returns its stdout.
func pipeThrough(ctx context.Context, r io.Reader, prog string, args ...string) (io.Reader, func() error, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = r
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", prog, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", prog, err)
	}
	wait := func() error {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
	return out, wait, nil
}
