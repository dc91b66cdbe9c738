//go:build vm

package kernels

import (
	"context"
	"os"
	"reflect"
	"testing"
	"time"
)

// TestFetchDefaultKernel downloads, verifies and extracts the default
// kernel (6.1 cloud) for real. It needs the network and runs with -tags vm.
// HOPLAB_TEST_KERNELS ("6.1/generic,7.2/cloud" or "all") or HOPLAB_FETCH_ALL=1
// select other kernels.
func TestFetchDefaultKernel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	targets := TestTargets()
	for _, tg := range targets {
		t.Run(tg.Series+"-"+tg.Flavour, func(t *testing.T) {
			start := time.Now()
			k, err := Fetch(ctx, tg.Series, tg.Flavour, Options{Quiet: true})
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			took := time.Since(start)
			var vmlinuxSize int64
			if k.Vmlinux != "" {
				st, err := os.Stat(k.Vmlinux)
				if err != nil {
					t.Fatal(err)
				}
				vmlinuxSize = st.Size()
			}
			t.Logf("%s/%s: release %s (%s) in %v; vmlinux %d bytes; %d modules, builtin %v",
				k.Series, k.Flavour, k.Version, k.PackageVersion, took.Round(time.Millisecond), vmlinuxSize, len(k.Modules), k.Builtin)
			for _, m := range k.Modules {
				t.Logf("  %s", m.Name)
			}
			if k.Vmlinux == "" {
				t.Errorf("no PVH vmlinux extracted from %s", k.Image)
			}
			names := map[string]bool{}
			for _, m := range k.Modules {
				names[m.Name] = true
			}
			for _, b := range k.Builtin {
				names[b] = true
			}
			for _, w := range DefaultModules {
				if !names[w] {
					t.Errorf("module %s neither loaded nor built in", w)
				}
			}
			// A second Fetch is a cache hit.
			start = time.Now()
			if _, err := Fetch(ctx, tg.Series, tg.Flavour, Options{Quiet: true}); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("cached Fetch took %v", d)
			}
		})
	}
}

// TestAptResolverAgreesWithLock resolves every catalogue kernel with apt
// against the host's Debian mirrors and reports pins that have a newer
// package (or have left the mirror). It fails only when resolution itself
// fails; a newer package is logged, since Fetch handles it.
func TestAptResolverAgreesWithLock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lock, err := ReadLock(LockFileName)
	if err != nil {
		t.Fatal(err)
	}
	r := &AptResolver{Mirrors: SystemMirrors()}
	for _, e := range lock.Kernels {
		t.Run(e.Series+"-"+e.Flavour, func(t *testing.T) {
			start := time.Now()
			got, err := r.Resolve(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			switch c := CompareVersions(got.Version(), e.Version()); {
			case c == 0 && got.Release == e.Release:
				if !reflect.DeepEqual(got, e) {
					t.Errorf("same version, different pin:\n got %+v\nlock %+v", got, e)
				}
				t.Logf("%s: pin %s is current (resolved in %v)", e.Key(), e.Version(), time.Since(start).Round(time.Millisecond))
			case c > 0:
				t.Logf("%s: newer package %s %s than the pinned %s %s", e.Key(), got.Release, got.Version(), e.Release, e.Version())
			default:
				t.Errorf("%s: resolver returned an older %s than the pin %s", e.Key(), got.Version(), e.Version())
			}
		})
	}
}
