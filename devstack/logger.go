package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/johannesboyne/gofakes3"
	tlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// discardLogger is used when Options.Logger is nil: a dev stack should be
// silent unless asked otherwise.
func discardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// temporalLogger adapts the server's logger interface to slog. The embedded
// server logs thousands of Info lines per minute (shard movement, task queue
// churn); only Warn and above reach the user's logger, and not even those
// while the stack is stopping (see phase).
type temporalLogger struct {
	l     *slog.Logger
	phase *atomic.Int32
}

// Phases of a stack's life, used to silence churn that is expected and
// harmless: while starting, services dial each other before all listen;
// while stopping (and after, as some server goroutines outlive Stop), pollers
// and clients report every closed connection, dozens of lines per stop.
const (
	phaseStarting int32 = iota
	phaseRunning
	phaseStopping
)

var (
	_ tlog.Logger     = temporalLogger{}
	_ tlog.WithLogger = temporalLogger{}
)

// fatalPanic is what the adapter panics with on Fatal. The server calls
// Fatal for recoverable setup problems (e.g. a listener that cannot bind);
// panicking instead of exiting lets Start recover it and return an error.
type fatalPanic struct{ msg string }

func (f fatalPanic) String() string { return "temporal server: " + f.msg }

func newTemporalLogger(l *slog.Logger, phase *atomic.Int32) temporalLogger {
	return temporalLogger{l: l.With("component", "temporal"), phase: phase}
}

func (t temporalLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	switch t.phase.Load() {
	case phaseStarting:
		if msg == "network dial error" {
			return
		}
	case phaseStopping:
		return
	}
	ctx := context.Background()
	if !t.l.Enabled(ctx, level) {
		return
	}
	t.l.LogAttrs(ctx, level, msg, tagAttrs(tags)...)
}

func tagAttrs(tags []tag.Tag) []slog.Attr {
	attrs := make([]slog.Attr, 0, len(tags))
	for _, tg := range tags {
		if tg == nil {
			continue
		}
		v := tg.Value()
		if err, ok := v.(error); ok {
			// Errors often lose their message in JSON handlers when passed as any.
			v = err.Error()
		}
		attrs = append(attrs, slog.Any(tg.Key(), v))
	}
	return attrs
}

func (t temporalLogger) Debug(string, ...tag.Tag) {}
func (t temporalLogger) Info(string, ...tag.Tag)  {}
func (t temporalLogger) Warn(msg string, tags ...tag.Tag) {
	t.log(slog.LevelWarn, msg, tags)
}
func (t temporalLogger) Error(msg string, tags ...tag.Tag) {
	t.log(slog.LevelError, msg, tags)
}
func (t temporalLogger) DPanic(msg string, tags ...tag.Tag) {
	t.log(slog.LevelError, msg, tags)
}
func (t temporalLogger) Panic(msg string, tags ...tag.Tag) {
	t.log(slog.LevelError, msg, tags)
	panic(msg)
}
func (t temporalLogger) Fatal(msg string, tags ...tag.Tag) {
	t.log(slog.LevelError, msg, tags)
	panic(fatalPanic{msg: fmt.Sprintf("%s %v", msg, tagAttrs(tags))})
}

// With keeps prepended tags cheap: the server creates many child loggers
// and the fallback wrapper in the server's log package re-copies tags on
// every call.
func (t temporalLogger) With(tags ...tag.Tag) tlog.Logger {
	args := make([]any, 0, len(tags))
	for _, a := range tagAttrs(tags) {
		args = append(args, a)
	}
	return temporalLogger{l: t.l.With(args...), phase: t.phase}
}

// s3Logger routes gofakes3's warnings and errors to slog; its info lines
// describe every request.
type s3Logger struct {
	l *slog.Logger
}

func (s s3Logger) Print(level gofakes3.LogLevel, v ...any) {
	switch level {
	case gofakes3.LogErr:
		s.l.Error(fmt.Sprint(v...), "component", "s3")
	case gofakes3.LogWarn:
		s.l.Warn(fmt.Sprint(v...), "component", "s3")
	}
}
