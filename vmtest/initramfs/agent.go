package initramfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hoplab/hoplab/internal/filelock"
)

// AgentPackage is the import path of hoplab's guest agent.
const AgentPackage = "github.com/hoplab/hoplab/vmtest/agent/cmd/hoplab-agent"

// BuildAgent builds the main package pkg as a static linux/amd64 binary
// (CGO_ENABLED=0, -trimpath, -ldflags=-s -w) and returns its path. The
// binary lives at a stable path in the cache derived from pkg and the
// module it is built in, so the go command's build ID check skips
// relinking when no input changed; concurrent callers are serialised with a
// file lock. It must run inside the module that provides pkg.
func BuildAgent(ctx context.Context, pkg string) (string, error) {
	if pkg == "" || strings.HasPrefix(pkg, "-") {
		return "", fmt.Errorf("build agent: bad package %q", pkg)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build agent %s: the go command is needed: %w", pkg, err)
	}
	gomod, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("build agent %s: go env GOMOD: %w", pkg, err)
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	key := sha256.Sum256([]byte(pkg + "\n" + strings.TrimSpace(string(gomod)) + "\nlinux/amd64 cgo=0 -trimpath -s -w"))
	outDir := filepath.Join(filepath.Dir(dir), "agent", hex.EncodeToString(key[:8]))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("build agent: %w", err)
	}
	unlock, err := filelock.Lock(ctx, filepath.Join(outDir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	out := filepath.Join(outDir, path.Base(pkg))
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build agent %s: %w\n%s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	slog.Debug("agent built", "package", pkg, "path", out, "took", time.Since(start).Round(time.Millisecond))
	return out, nil
}
