package bgp

import (
	"context"
	"log/slog"
	"sort"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// slogAdapter makes a *slog.Logger look like GoBGP's logger. Panic and Fatal
// are logged at error level: a library must not end the process.
type slogAdapter struct {
	l *slog.Logger
}

var _ gobgplog.Logger = slogAdapter{}

func (a slogAdapter) log(level slog.Level, msg string, fields gobgplog.Fields) {
	ctx := context.Background()
	if !a.l.Enabled(ctx, level) {
		return
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, fields[k]))
	}
	a.l.LogAttrs(ctx, level, msg, attrs...)
}

func (a slogAdapter) Panic(msg string, fields gobgplog.Fields) { a.log(slog.LevelError, msg, fields) }
func (a slogAdapter) Fatal(msg string, fields gobgplog.Fields) { a.log(slog.LevelError, msg, fields) }
func (a slogAdapter) Error(msg string, fields gobgplog.Fields) { a.log(slog.LevelError, msg, fields) }
func (a slogAdapter) Warn(msg string, fields gobgplog.Fields)  { a.log(slog.LevelWarn, msg, fields) }
func (a slogAdapter) Info(msg string, fields gobgplog.Fields)  { a.log(slog.LevelInfo, msg, fields) }
func (a slogAdapter) Debug(msg string, fields gobgplog.Fields) { a.log(slog.LevelDebug, msg, fields) }

// SetLevel is ignored: the slog handler decides what is logged.
func (a slogAdapter) SetLevel(gobgplog.LogLevel) {}

// GetLevel reports the most verbose level the handler accepts, so GoBGP skips
// building debug messages nobody will see.
func (a slogAdapter) GetLevel() gobgplog.LogLevel {
	ctx := context.Background()
	switch {
	case a.l.Enabled(ctx, slog.LevelDebug):
		return gobgplog.DebugLevel
	case a.l.Enabled(ctx, slog.LevelInfo):
		return gobgplog.InfoLevel
	case a.l.Enabled(ctx, slog.LevelWarn):
		return gobgplog.WarnLevel
	default:
		return gobgplog.ErrorLevel
	}
}
