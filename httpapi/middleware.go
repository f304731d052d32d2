package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"livedrops/domain"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-Id"

// withRequestID gives every request an id: the caller's X-Request-Id when it
// is well-formed (so one id follows a request through proxies), else a new
// one. The id is echoed in the response and put in the context for logs and
// audit rows.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(domain.WithRequestID(r.Context(), id)))
	})
}

// validRequestID accepts 1 to 64 of [A-Za-z0-9_-]: enough for UUIDs and
// trace ids, and nothing that could forge a log line.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// limitBody refuses bodies over max: 413 at once when Content-Length says
// so, and a read error the transports turn into 413 when a body without a
// length grows past it.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			refuse(w, r, mediaJSON, http.StatusRequestEntityTooLarge, tooLarge(max))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}

// recoverHTTP answers 500 to a panic outside the executor (which recovers its
// own) and logs it with its stack, so no route drops a connection silently.
func recoverHTTP(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p) // net/http's own way to abort a response
			}
			log.ErrorContext(r.Context(), "panic serving http",
				"panic", fmt.Sprint(p), "path", r.URL.Path, "stack", string(debug.Stack()))
			w.Header().Set("Content-Type", mediaJSON+"; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`))
		}()
		next.ServeHTTP(w, r)
	})
}
