package main

import (
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hoplab/hoplab/vmtest/kernels"
)

func newKernelsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kernels",
		Short: "List and fetch the catalogue's guest kernels",
	}
	cmd.AddCommand(newKernelsListCmd(a), newKernelsFetchCmd(a))
	return cmd
}

// kernelRow is one line of `kernels list`.
type kernelRow struct {
	Series         string `json:"series"`
	Flavour        string `json:"flavour"`
	Release        string `json:"release"`
	PackageVersion string `json:"package_version"`
	Cached         bool   `json:"cached"`
	Pinned         bool   `json:"pinned"`
	Path           string `json:"path,omitempty"`
}

func newKernelsListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show every catalogue kernel (series × flavour), whether it is cached, and where",
		Long: `List shows the catalogue's kernels as the lock file pins them, one line per
series and flavour, with the kernel release, the Debian package version,
whether it is in the cache and the image's path. Cached kernels the lock no
longer pins (older versions, a user's own kernels) follow.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := kernels.CacheDir()
			if err != nil {
				return fmt.Errorf("kernels list: %w", err)
			}
			lock, err := kernels.CurrentLock(dir)
			if err != nil {
				return fmt.Errorf("kernels list: %w", err)
			}
			cached, err := kernels.List(dir)
			if err != nil {
				return fmt.Errorf("kernels list: %w", err)
			}
			rows := kernelRows(lock, cached)
			if asJSON {
				return writeJSON(a.stdout, rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIES\tFLAVOUR\tRELEASE\tPACKAGE\tCACHED\tPATH")
			for _, r := range rows {
				state := "no"
				if r.Cached {
					state = "yes"
				}
				if r.Cached && !r.Pinned {
					state = "yes (unpinned)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Series, r.Flavour, r.Release, dash(r.PackageVersion), state, dash(r.Path))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "cache: %s\n", dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rows as JSON")
	return cmd
}

// kernelRows joins the lock's catalogue with the cache's content.
func kernelRows(lock *kernels.Lock, cached []kernels.Cached) []kernelRow {
	var rows []kernelRow
	used := make([]bool, len(cached))
	for _, series := range kernels.Series {
		for _, flavour := range kernels.Flavours {
			e, err := lock.Lookup(series, flavour)
			if err != nil {
				continue
			}
			r := kernelRow{Series: series, Flavour: flavour, Release: e.Release, PackageVersion: e.Version(), Pinned: true}
			for i, c := range cached {
				if c.Series == series && c.Flavour == flavour && c.Version == e.Release && c.PackageVersion == e.Version() {
					r.Cached, r.Path, used[i] = true, c.BootImage(), true
				}
			}
			rows = append(rows, r)
		}
	}
	for i, c := range cached {
		if used[i] {
			continue
		}
		rows = append(rows, kernelRow{Series: c.Series, Flavour: c.Flavour, Release: c.Version,
			PackageVersion: c.PackageVersion, Cached: true, Pinned: false, Path: c.BootImage()})
	}
	return rows
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newKernelsFetchCmd(a *app) *cobra.Command {
	var flavour string
	cmd := &cobra.Command{
		Use:   "fetch [SERIES...]",
		Short: "Download, verify and extract catalogue kernels into the cache",
		Long: `Fetch downloads the pinned Debian packages of the named series (default: ` + kernels.DefaultSeries + `),
verifies their sha256 against the lock, and extracts the bootable image,
an uncompressed vmlinux and the guest's modules into the cache. A progress
bar shows each download on a terminal. Cached kernels are not downloaded
again. When a pinned package has left the mirror, the newest of the same
series is taken and the lock updated (with a warning).`,
		Example: `  hoplab kernels fetch
  hoplab kernels fetch 5.10 6.12 --flavour all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			series := args
			if len(series) == 0 {
				series = []string{kernels.DefaultSeries}
			}
			for _, s := range series {
				if !slices.Contains(kernels.Series, s) {
					return fmt.Errorf("kernels fetch: unknown series %q (catalogue: %v)", s, kernels.Series)
				}
			}
			flavours := []string{flavour}
			switch flavour {
			case "all":
				flavours = kernels.Flavours
			case kernels.FlavourCloud, kernels.FlavourGeneric:
			default:
				return fmt.Errorf("kernels fetch: unknown flavour %q (cloud, generic or all)", flavour)
			}
			for _, s := range series {
				for _, f := range flavours {
					k, err := kernels.Fetch(cmd.Context(), s, f, kernels.Options{Logger: a.logger()})
					if err != nil {
						return err // "fetch kernel 6.1/cloud: ..."
					}
					fmt.Fprintf(a.stdout, "%s %s: %s (%s) %s\n", s, f, k.Version, k.PackageVersion, k.BootImage())
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&flavour, "flavour", kernels.DefaultFlavour, "flavour: cloud, generic or all")
	return cmd
}
