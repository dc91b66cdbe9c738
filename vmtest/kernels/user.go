package kernels

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// FlavourUser is the Flavour of kernels given with FromPath.
const FlavourUser = "user"

// EnvKernel names the environment variable that selects a user's kernel,
// "/path/to/bzImage[,modules-dir]".
const EnvKernel = "HOPLAB_KERNEL"

// FromEnv returns the kernel named by $HOPLAB_KERNEL (see FromPath). ok is
// false, with no error, when the variable is unset.
func FromEnv() (k *Kernel, ok bool, err error) {
	v := strings.TrimSpace(os.Getenv(EnvKernel))
	if v == "" {
		return nil, false, nil
	}
	k, err = FromPath(v)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", EnvKernel, err)
	}
	return k, true, nil
}

// FromPath prepares a user's own kernel, given as "IMAGE[,MODULES-DIR]":
// IMAGE is a bzImage (or an uncompressed vmlinux with a PVH note) and
// MODULES-DIR either a /lib/modules/<release> tree or any directory holding
// the .ko files. This is how kernels outside the catalogue, such as 4.19,
// are run.
//
// Without MODULES-DIR every module is assumed to be built in. With it, the
// DefaultModules and their dependencies are collected (decompressed) into
// the cache; a module found neither there nor in its modules.builtin is an
// error, unless the directory has no modules.builtin at all, in which case
// it is assumed built in and a warning is logged.
func FromPath(spec string) (*Kernel, error) {
	image, modDir, _ := strings.Cut(spec, ",")
	image, modDir = strings.TrimSpace(image), strings.TrimSpace(modDir)
	if image == "" {
		return nil, fmt.Errorf("user kernel %q: no image path (want /path/to/bzImage[,modules-dir])", spec)
	}
	image, err := filepath.Abs(image)
	if err != nil {
		return nil, fmt.Errorf("user kernel: %w", err)
	}
	data, err := os.ReadFile(image)
	if err != nil {
		return nil, fmt.Errorf("user kernel: %w", err)
	}
	cacheDir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	// Look at the image before making its cache folder, so a file that is
	// not a kernel leaves nothing behind.
	version := imageRelease(data)
	if version == "" {
		return nil, fmt.Errorf("user kernel %s: cannot find the kernel release in the image (is it a bzImage or vmlinux?)", image)
	}
	sum := sha256.Sum256(data)
	dir := filepath.Join(cacheDir, "user", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("user kernel cache: %w", err)
	}
	k := &Kernel{Flavour: FlavourUser, Image: image, Dir: dir, Requested: wantedModules(nil), Version: version}
	k.Series = seriesOf(k.Version)

	switch {
	case validELF(data):
		pvh, err := hasPVHNote(data)
		if err != nil {
			return nil, fmt.Errorf("user kernel %s: %w", image, err)
		}
		if !pvh {
			return nil, fmt.Errorf("user kernel %s: %w (QEMU cannot boot it; give the bzImage)", image, ErrNoPVH)
		}
		k.Vmlinux = image
	default:
		vmlinux := filepath.Join(dir, "vmlinux")
		if _, err := os.Stat(vmlinux); err == nil {
			k.Vmlinux = vmlinux
		} else if err := ExtractVmlinux(context.Background(), image, vmlinux); err == nil {
			k.Vmlinux = vmlinux
		} else if !errors.Is(err, ErrNoPVH) {
			slog.Warn("cannot extract vmlinux from the user kernel; VMs will boot the bzImage", "image", image, "err", err)
		}
	}

	if modDir == "" {
		k.Builtin = k.Requested
		return k, nil
	}
	modDir, err = filepath.Abs(modDir)
	if err != nil {
		return nil, fmt.Errorf("user kernel modules: %w", err)
	}
	if st, err := os.Stat(modDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("user kernel modules %s: not a directory", modDir)
	}
	mt, err := openModuleTree(modDir)
	if err != nil {
		return nil, err
	}
	dsum := sha256.Sum256([]byte(modDir))
	k.Modules, k.Builtin, err = mt.collect(k.Requested, filepath.Join(dir, "modules-"+hex.EncodeToString(dsum[:6])))
	if err != nil {
		return nil, fmt.Errorf("user kernel %s: %w", k.Version, err)
	}
	if mt.assumeBuiltin && len(k.Builtin) > 0 {
		slog.Warn("modules not found in the user's modules directory (it has no modules.builtin); assuming they are built in",
			"dir", modDir, "modules", k.Builtin)
	}
	return k, nil
}

// seriesOf returns "MAJOR.MINOR" of a release ("4.19.0-27-amd64" → "4.19").
func seriesOf(release string) string {
	if m := regexp.MustCompile(`^([0-9]+)\.([0-9]+)`).FindStringSubmatch(release); m != nil {
		return m[1] + "." + m[2]
	}
	return ""
}

// offKernelVersion is the setup header's kernel_version field: a pointer
// (minus 0x200) to the version string.
const offKernelVersion = 0x20e

// imageRelease finds the kernel release in a bzImage (from its setup
// header) or an ELF vmlinux (from the "Linux version" banner).
func imageRelease(data []byte) string {
	if len(data) > 0x210 && string(data[offHeaderMagic:offHeaderMagic+4]) == "HdrS" {
		if p := int(binary.LittleEndian.Uint16(data[offKernelVersion:])); p != 0 && p+0x200 < len(data) {
			s := data[p+0x200:]
			if i := bytes.IndexByte(s, 0); i >= 0 {
				s = s[:i]
			}
			if f := strings.Fields(string(s)); len(f) > 0 && seriesOf(f[0]) != "" {
				return f[0]
			}
		}
	}
	const banner = "Linux version "
	for rest := data; ; {
		i := bytes.Index(rest, []byte(banner))
		if i < 0 {
			return ""
		}
		rest = rest[i+len(banner):]
		end := bytes.IndexAny(rest, " \x00\n")
		if end > 0 && seriesOf(string(rest[:end])) != "" {
			return string(rest[:end])
		}
	}
}
