package logging

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Request is what the access line says about a request beyond what HTTP
// knows: its GraphQL operation and the error codes it was answered with. The
// layers that learn them fill it in through RequestFrom; every method is safe
// on a nil *Request, so they need not check.
type Request struct {
	mu        sync.Mutex
	operation string
	opType    string
	codes     []string
}

// maxCodes bounds the codes kept for one request: a WebSocket connection may
// see many operations.
const maxCodes = 16

type requestKey struct{}

// RequestFrom returns the access record of ctx, or nil outside AccessLog.
func RequestFrom(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}

// SetOperation records the GraphQL operation the request ran.
func (r *Request) SetOperation(name, opType string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.operation, r.opType = name, opType
	r.mu.Unlock()
}

// AddErrorCode records an error code the request was answered with, once.
func (r *Request) AddErrorCode(code string) {
	if r == nil || code == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.codes) < maxCodes && !slices.Contains(r.codes, code) {
		r.codes = append(r.codes, code)
	}
}

func (r *Request) attrs() []slog.Attr {
	r.mu.Lock()
	defer r.mu.Unlock()
	var attrs []slog.Attr
	if r.opType != "" {
		attrs = append(attrs, slog.String("operation", r.operation), slog.String("operation_type", r.opType))
	}
	if len(r.codes) > 0 {
		attrs = append(attrs, slog.Any("error_codes", slices.Clone(r.codes)))
	}
	return attrs
}

// AccessOptions tunes AccessLog.
type AccessOptions struct {
	// Quiet requests are logged at debug level, so probes and scrapes do not
	// drown the lines people read.
	Quiet func(r *http.Request) bool
	// Done, when set, is called after each request with the request as the
	// handlers saw it (Pattern set by the router), its status and duration.
	Done func(r *http.Request, status int, elapsed time.Duration)
}

// AccessLog returns a middleware writing one line per request: method, path,
// status, duration, bytes, the GraphQL operation and error codes, and (through
// the context) the request id. Server errors are logged at error level.
func AccessLog(log *slog.Logger, o AccessOptions) func(http.Handler) http.Handler {
	log = WithRequestIDs(log)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &Request{}
			r = r.WithContext(context.WithValue(r.Context(), requestKey{}, rec))
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				elapsed := time.Since(start)
				status := sw.statusCode()
				if o.Done != nil {
					o.Done(r, status, elapsed)
				}
				level := slog.LevelInfo
				switch {
				case status >= 500:
					level = slog.LevelError
				case o.Quiet != nil && o.Quiet(r):
					level = slog.LevelDebug
				}
				attrs := append([]slog.Attr{
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Int("status", status),
					slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
					slog.Int64("bytes", sw.bytes),
				}, rec.attrs()...)
				log.LogAttrs(r.Context(), level, "http request", attrs...)
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// statusWriter remembers the status and size of a response. It passes
// Flush (server-sent events) and Hijack (WebSocket) through.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	// 1xx other than 101 are interim; the final status comes later.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) statusCode() int {
	if w.status == 0 {
		// A handler that wrote nothing answered 200, as net/http does.
		return http.StatusOK
	}
	return w.status
}
