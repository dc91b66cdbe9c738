//go:build vm

package initramfs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hoplab/hoplab/internal/testreq"
	"github.com/hoplab/hoplab/vmtest/kernels"
)

// TestBootLoadsModules boots each catalogue kernel (the default one, or all
// with HOPLAB_FETCH_ALL=1, or HOPLAB_TEST_KERNELS) under QEMU with an initramfs whose /init loads
// every module in hoplab.order, proving the vmlinux, the module set and its
// load order. Runs with -tags vm; needs network on first use and QEMU.
func TestBootLoadsModules(t *testing.T) {
	qemu := testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	initBin, err := BuildAgent(ctx, "./testdata/modprobe-init")
	if err != nil {
		t.Fatal(err)
	}
	targets := kernels.TestTargets()
	for _, tg := range targets {
		t.Run(tg.Series+"-"+tg.Flavour, func(t *testing.T) {
			k, err := kernels.Fetch(ctx, tg.Series, tg.Flavour, kernels.Options{Quiet: true})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			want := filepath.Join(t.TempDir(), "want")
			if err := os.WriteFile(want, []byte(strings.Join(k.Requested, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			initrd, err := Build(ctx, Spec{Init: initBin, Modules: k.Modules, Files: map[string]string{"/etc/hoplab-want": want}})
			if err != nil {
				t.Fatal(err)
			}
			buildTook := time.Since(start)
			for _, img := range []string{k.Vmlinux, k.Image} {
				if img == "" {
					continue
				}
				bctx, bcancel := context.WithTimeout(ctx, 90*time.Second)
				cmd := exec.CommandContext(bctx, qemu, "-M", "q35", "-accel", "tcg", "-m", "512", "-smp", "1",
					"-display", "none", "-no-reboot", "-serial", "stdio", "-monitor", "none",
					"-kernel", img, "-initrd", initrd,
					"-append", "console=ttyS0 panic=-1 quiet loglevel=3")
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				start := time.Now()
				err := cmd.Run()
				bcancel()
				took := time.Since(start)
				console := out.String()
				if !strings.Contains(console, "HOPLAB-BOOT-OK "+k.Version) {
					t.Fatalf("boot %s failed (%v) after %v; console:\n%s", img, err, took, tailLines(console, 40))
				}
				t.Logf("%s: booted %s, loaded %d modules (built in: %v) in %v (initramfs build %v)",
					k.Version, filepath.Base(img), len(k.Modules), k.Builtin, took.Round(time.Millisecond), buildTook.Round(time.Millisecond))
			}
		})
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestMeasureCompression compares boot time and build time of an
// uncompressed and a gzip initramfs carrying a large binary (the test
// binary itself), on the default kernel. Set HOPLAB_MEASURE=1 to run it.
func TestMeasureCompression(t *testing.T) {
	if os.Getenv("HOPLAB_MEASURE") == "" {
		t.Skip("measurement only: set HOPLAB_MEASURE=1")
	}
	qemu := testreq.Command(t, "qemu-system-x86_64", "apt-get install -y qemu-system-x86")
	ctx := context.Background()
	initBin, err := BuildAgent(ctx, "./testdata/modprobe-init")
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernels.Fetch(ctx, "", "", kernels.Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	for _, c := range []Compression{CompressionNone, CompressionGzip, CompressionNone, CompressionGzip} {
		start := time.Now()
		initrd, err := Build(ctx, Spec{Init: initBin, Modules: k.Modules, Files: map[string]string{"/bin/payload": self},
			Compression: c, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		build := time.Since(start)
		st, _ := os.Stat(initrd)
		start = time.Now()
		out, err := exec.CommandContext(ctx, qemu, "-M", "q35", "-accel", "tcg", "-m", "512", "-smp", "1",
			"-display", "none", "-no-reboot", "-serial", "stdio", "-monitor", "none",
			"-kernel", k.BootImage(), "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet loglevel=3").CombinedOutput()
		if !strings.Contains(string(out), "HOPLAB-BOOT-OK") {
			t.Fatalf("boot failed: %v\n%s", err, tailLines(string(out), 20))
		}
		t.Logf("%s: %d-byte initramfs built in %v, boot to poweroff %v", c, st.Size(), build.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
}
