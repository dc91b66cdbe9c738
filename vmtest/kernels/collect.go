package kernels

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// streamCollector picks the wanted modules and their dependencies out of
// kernel packages while they stream past, without unpacking the thousands
// of modules nobody needs. A module is kept when it is already known to be
// wanted as it passes; its dependencies become wanted. A dependency that
// passed before it became wanted is fetched by another pass over the
// packages (rare, and only for those modules).
type streamCollector struct {
	release string
	want    map[string]bool     // names wanted so far
	kept    map[string][]byte   // wanted modules, decompressed
	deps    map[string][]string // dependencies of kept modules
	seen    map[string]bool     // every module file in the packages
	builtin map[string]bool     // from modules.builtin
	hasList bool                // a modules.builtin was found
}

func newStreamCollector(release string, want []string) *streamCollector {
	c := &streamCollector{release: release, want: map[string]bool{}, kept: map[string][]byte{},
		deps: map[string][]string{}, seen: map[string]bool{}, builtin: map[string]bool{}}
	for _, w := range want {
		c.want[ModuleName(w)] = true
	}
	return c
}

// entry handles one file of the release's module directory (rest is the
// path below /lib/modules/<release>/). It reports whether it consumed it.
func (c *streamCollector) entry(rest string, r io.Reader) (bool, error) {
	if rest == "modules.builtin" {
		c.hasList = true
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				c.builtin[ModuleName(line)] = true
			}
		}
		return true, sc.Err()
	}
	if !isModuleFile(rest) {
		return false, nil
	}
	name := ModuleName(rest)
	c.seen[name] = true
	if !c.want[name] || c.kept[name] != nil {
		return true, nil
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return true, fmt.Errorf("read %s: %w", rest, err)
	}
	ko, err := decompressModule(rest, raw)
	if err != nil {
		return true, err
	}
	deps, err := ModuleDepends(ko)
	if err != nil {
		return true, fmt.Errorf("%s: %w", rest, err)
	}
	c.kept[name], c.deps[name] = ko, deps
	for _, d := range deps {
		c.want[d] = true
	}
	return true, nil
}

// missing lists wanted modules the packages have but that were not kept
// (they streamed past before they became wanted).
func (c *streamCollector) missing() []string {
	var out []string
	for name := range c.want {
		if c.seen[name] && c.kept[name] == nil {
			out = append(out, name)
		}
	}
	return out
}

// depsOf implements depsFunc over what was collected.
func (c *streamCollector) depsOf(name string) ([]string, bool, error) {
	if c.kept[name] != nil {
		return c.deps[name], false, nil
	}
	if c.builtin[name] || (!c.hasList && !c.seen[name]) {
		return nil, true, nil
	}
	return nil, false, ErrModuleNotFound
}

// collectModules streams debs (passing every other file of the packages to
// other), keeps the modules wanted for release, and writes them to dst in
// load order. It returns the modules, the built-in names and whether the
// built-in status was assumed (no modules.builtin in the packages).
func collectModules(ctx context.Context, debs []string, release string, want []string, dst string,
	other func(hdr *tar.Header, r io.Reader) error) (mods []Module, builtin []string, assumed bool, err error) {
	c := newStreamCollector(release, want)
	walk := func(otherFn func(hdr *tar.Header, r io.Reader) error) error {
		for _, deb := range debs {
			err := walkDeb(ctx, deb, func(hdr *tar.Header, r io.Reader) error {
				if hdr.Typeflag != tar.TypeReg || strings.Contains(hdr.Name, "..") {
					return nil
				}
				if m := modulesPathRe.FindStringSubmatch(hdr.Name); m != nil && m[1] == release {
					if done, err := c.entry(m[2], r); done || err != nil {
						return err
					}
				}
				if otherFn != nil {
					return otherFn(hdr, r)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("extract %s: %w", filepath.Base(deb), err)
			}
		}
		return nil
	}
	if err := walk(other); err != nil {
		return nil, nil, false, err
	}
	// Each extra pass keeps at least one more module, so this ends.
	for len(c.missing()) > 0 {
		if err := walk(nil); err != nil {
			return nil, nil, false, err
		}
	}
	load, builtin, err := orderModules(want, c.depsOf)
	if err != nil {
		return nil, nil, false, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, nil, false, fmt.Errorf("write modules: %w", err)
	}
	for _, name := range load {
		p := filepath.Join(dst, name+".ko")
		if err := os.WriteFile(p, c.kept[name], 0o644); err != nil {
			return nil, nil, false, fmt.Errorf("write module %s: %w", name, err)
		}
		mods = append(mods, Module{Name: name, Path: p})
	}
	slices.Sort(builtin)
	return mods, builtin, !c.hasList, nil
}
