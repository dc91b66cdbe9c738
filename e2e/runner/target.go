package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/hoplab/hoplab/vmtest/kernels"
)

// Target is one kernel the suites run on: a catalogue series, or a user's
// own image (as HOPLAB_KERNEL takes it).
type Target struct {
	// Series is the catalogue series ("6.1"); "" is the default series.
	// Unused for a user kernel.
	Series string
	// User is a user kernel, "IMAGE[,MODULES-DIR]"; "" for the catalogue.
	User string
}

// String names the target in messages: its series, or its image path.
func (t Target) String() string {
	if t.User != "" {
		image, _, _ := strings.Cut(t.User, ",")
		return image
	}
	return orDefault(t.Series)
}

// ParseKernelFlag reads -kernel: a catalogue series ("6.12"), or the path
// of a user's kernel image with an optional ",MODULES-DIR". A value with a
// path separator, or naming an existing file, is a path.
func ParseKernelFlag(v string) Target {
	v = strings.TrimSpace(v)
	if v == "" {
		return Target{}
	}
	image, _, _ := strings.Cut(v, ",")
	if strings.ContainsRune(image, os.PathSeparator) {
		return Target{User: v}
	}
	if st, err := os.Stat(image); err == nil && !st.IsDir() {
		return Target{User: v}
	}
	return Target{Series: v}
}

// ParseExtraKernels reads EXTRA_KERNELS, "IMAGE[,MODULES-DIR],IMAGE...":
// comma-separated paths where a directory is the modules of the image
// before it and anything else starts a new kernel.
func ParseExtraKernels(v string) ([]Target, error) {
	var out []Target
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("extra kernel %s: %w", f, err)
		}
		if st.IsDir() {
			if len(out) == 0 || strings.Contains(out[len(out)-1].User, ",") {
				return nil, fmt.Errorf("extra kernel %s: a modules directory must follow its image", f)
			}
			out[len(out)-1].User += "," + f
			continue
		}
		out = append(out, Target{User: f})
	}
	return out, nil
}

// resolve prepares the target's kernel (fetching a catalogue one into the
// cache) and returns it.
func (t Target) resolve(ctx context.Context, log *slog.Logger) (*kernels.Kernel, error) {
	if t.User != "" {
		k, err := kernels.FromPath(t.User)
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	series := t.Series
	if series == "" {
		series = kernels.DefaultSeries
	}
	return kernels.Fetch(ctx, series, "", kernels.Options{Logger: log})
}

// env returns the suites' environment for the target: a user kernel is
// passed as HOPLAB_KERNEL, a catalogue series as HOPLAB_SERIES, and a
// HOPLAB_KERNEL of the caller's never leaks into a catalogue run.
func (t Target) env(base []string) []string {
	out := make([]string, 0, len(base)+1)
	for _, kv := range base {
		if strings.HasPrefix(kv, kernels.EnvKernel+"=") || strings.HasPrefix(kv, "HOPLAB_SERIES=") {
			continue
		}
		out = append(out, kv)
	}
	switch {
	case t.User != "":
		out = append(out, kernels.EnvKernel+"="+t.User)
	case t.Series != "":
		out = append(out, "HOPLAB_SERIES="+t.Series)
	}
	return out
}
