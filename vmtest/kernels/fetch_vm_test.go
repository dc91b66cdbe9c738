//go:build vm

package kernels

import (
	"context"
	"os"
	"reflect"
	"strings"
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
	targets := vmTargets(t)
	for _, tg := range targets {
		t.Run(tg.series+"-"+tg.flavour, func(t *testing.T) {
			start := time.Now()
			k, err := Fetch(ctx, tg.series, tg.flavour, Options{Quiet: true})
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
			if _, err := Fetch(ctx, tg.series, tg.flavour, Options{Quiet: true}); err != nil {
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

// vmTarget names a catalogue kernel.
type vmTarget struct{ series, flavour string }

// vmTargets returns the kernels a vm test covers: the default one, or
// those in HOPLAB_TEST_KERNELS ("6.1/cloud,7.2/generic" or "all"), or all
// with HOPLAB_FETCH_ALL=1.
func vmTargets(t *testing.T) []vmTarget {
	spec := os.Getenv("HOPLAB_TEST_KERNELS")
	if os.Getenv("HOPLAB_FETCH_ALL") != "" {
		spec = "all"
	}
	switch spec {
	case "":
		return []vmTarget{{DefaultSeries, DefaultFlavour}}
	case "all":
		var out []vmTarget
		for _, s := range Series {
			for _, f := range Flavours {
				out = append(out, vmTarget{s, f})
			}
		}
		return out
	}
	var out []vmTarget
	for _, k := range strings.Split(spec, ",") {
		s, f, _ := strings.Cut(strings.TrimSpace(k), "/")
		out = append(out, vmTarget{s, f})
	}
	return out
}
