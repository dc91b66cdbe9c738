package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/hoplab/hoplab/internal/capture"
	"github.com/hoplab/hoplab/vmtest/cluster"
)

// When replay shows progress: reading a capture of at least bigCapture
// bytes (about 50,000 small packets; reading 100,000 takes under a
// second), and injecting at least manyFrames frames (a few seconds and
// more under TCG).
const (
	bigCapture = 4 << 20
	manyFrames = 2000
	// maxOutSightings caps the frames --out keeps for the per-hop
	// captures, as cluster.DefaultMaxObservations caps the journeys'.
	maxOutSightings = cluster.DefaultMaxObservations
)

// terminal reports whether w is a terminal (a character device).
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// readProgress is the capture reader's progress for replay --pcap path: a
// bar per stage on a terminal stderr for a capture of bigCapture bytes or
// more; nil (nothing shown) otherwise, as reading takes a second at most.
func (a *app) readProgress(path string) capture.Progress {
	st, err := os.Stat(path)
	if err != nil {
		return nil // reading reports the error
	}
	return newReadProgress(a.stderr, terminal(a.stderr), filepath.Base(path), st.Size())
}

// newReadProgress is readProgress for a capture named name of size bytes,
// shown on w when term.
func newReadProgress(w io.Writer, term bool, name string, size int64) capture.Progress {
	if !term || size < bigCapture {
		return nil
	}
	var (
		bar   *progressbar.ProgressBar
		stage capture.Stage
	)
	return func(s capture.Stage, done, total int64) {
		if s != stage {
			if bar != nil {
				_ = bar.Finish()
			}
			stage = s
			opts := []progressbar.Option{
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription(fmt.Sprintf("%s %s", s, name)),
				progressbar.OptionThrottle(100 * time.Millisecond),
				progressbar.OptionClearOnFinish(),
			}
			if s == capture.StageRead {
				opts = append(opts, progressbar.OptionShowBytes(true))
			} else {
				opts = append(opts, progressbar.OptionShowCount())
			}
			bar = progressbar.NewOptions64(total, opts...)
		}
		_ = bar.Set64(done)
		if done >= total {
			_ = bar.Finish()
		}
	}
}

// injectProgress is the replay's injection progress for total frames: a
// bar on a terminal stderr, else a note at each quarter; nothing for fewer
// than manyFrames. done ends it (a bar is cleared).
func (a *app) injectProgress(total int) (progress func(sent, total int), done func()) {
	return newInjectProgress(a.stderr, terminal(a.stderr), a.logger(), total)
}

// newInjectProgress is injectProgress showing a bar on w when term, else
// logging to log.
func newInjectProgress(w io.Writer, term bool, log *slog.Logger, total int) (progress func(sent, total int), done func()) {
	if total < manyFrames {
		return nil, func() {}
	}
	if term {
		bar := progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("injecting"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		var once sync.Once
		return func(sent, _ int) { _ = bar.Set(sent) }, func() { once.Do(func() { _ = bar.Finish() }) }
	}
	next := 1 // the next quarter to note
	return func(sent, total int) {
		if next > 3 || sent*4 < next*total {
			return
		}
		for next <= 3 && sent*4 >= next*total {
			next++
		}
		log.Info(fmt.Sprintf("injected %d of %d frames", sent, total))
	}, func() {}
}
