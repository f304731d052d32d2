// Package logging sets up the service's logs: JSON lines through log/slog,
// each line of a request carrying that request's id, and one access line per
// HTTP request.
//
// Log with the *Context methods (InfoContext, ErrorContext, ...) and the
// request id of ctx is added as "request_id" without anyone passing it.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"livedrops/domain"
)

// New returns a JSON logger writing to w at level ("debug", "info", "warn" or
// "error", any case; empty is info). An unknown level logs at info and says
// so in its first line: logs are never lost to a typo.
func New(level string, w io.Writer) *slog.Logger {
	lvl, err := ParseLevel(level)
	log := slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})})
	if err != nil {
		log.Warn("unknown log level, logging at info", "log_level", level)
	}
	return log
}

// ParseLevel reads a level name as New accepts it, so configuration can
// refuse a bad one at start.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("parse log level %q: want debug, info, warn or error", s)
}

// WithRequestIDs returns log with request ids added from the context of each
// line; a logger from New already has them and is returned as it is.
func WithRequestIDs(log *slog.Logger) *slog.Logger {
	if _, ok := log.Handler().(contextHandler); ok {
		return log
	}
	return slog.New(contextHandler{log.Handler()})
}

// contextHandler adds the request id of the record's context to the record.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := domain.RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
