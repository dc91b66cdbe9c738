package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// plainHandler writes log records as the CLI's users read them: one line,
// "note: " for information and "warning: " for warnings, the message, and
// the attributes in parentheses (durations rounded to milliseconds). Debug
// records are dropped; --verbose and --log-format switch to slog's own
// formats.
type plainHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	min   slog.Level
	attrs []slog.Attr
}

// newPlainHandler prints records of level min and above to w.
func newPlainHandler(w io.Writer, min slog.Level) *plainHandler {
	return &plainHandler{mu: &sync.Mutex{}, w: w, min: max(min, slog.LevelInfo)}
}

// Enabled reports whether level is printed.
func (h *plainHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

// Handle writes one record as one line.
func (h *plainHandler) Handle(_ context.Context, r slog.Record) error {
	prefix := "note: "
	switch {
	case r.Level >= slog.LevelError:
		prefix = "error: "
	case r.Level >= slog.LevelWarn:
		prefix = "warning: "
	}
	var parts []string
	add := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		v := a.Value.Resolve()
		s := v.String()
		if v.Kind() == slog.KindDuration {
			s = v.Duration().Round(time.Millisecond).String()
		}
		parts = append(parts, a.Key+" "+oneLineText(s))
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	line := prefix + oneLineText(r.Message)
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintln(h.w, line)
	return err
}

// WithAttrs returns a handler that adds attrs to every line.
func (h *plainHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &plainHandler{mu: h.mu, w: h.w, min: h.min, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

// WithGroup returns h: groups are flattened in plain lines.
func (h *plainHandler) WithGroup(string) slog.Handler { return h }

// oneLineText joins a multi-line text into one line.
func oneLineText(s string) string { return strings.Join(strings.Fields(s), " ") }
