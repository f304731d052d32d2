package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Serve serves srv on ln until ctx ends, then shuts down within grace:
// live streams (WebSocket and server-sent events) are ended at once, so
// their clients reconnect to another instance instead of holding this one
// up; new connections are refused; requests in flight may finish. It
// returns nil after a clean shutdown, or why serving or shutting down
// failed.
//
// Serve wraps srv.Handler (to end streams), so set the handler before.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger, grace time.Duration) error {
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	var live sync.WaitGroup // streams, which Shutdown does not wait for once hijacked

	inner := srv.Handler
	if inner == nil {
		inner = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isStream(r) {
			inner.ServeHTTP(w, r)
			return
		}
		live.Add(1)
		defer live.Done()
		rctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(streams, cancel)
		defer stop()
		inner.ServeHTTP(w, r.WithContext(rctx))
	})

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	log.Info("http server shutting down", "grace", grace.String())
	endStreams()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err == nil {
		err = waitGroup(sctx, &live)
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down http server on %s within %s: %w", ln.Addr(), grace, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}
	log.Info("http server stopped")
	return nil
}

// isStream tells the requests that stay open for as long as the client
// listens: WebSocket upgrades and server-sent events.
func isStream(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// waitGroup waits for wg, or for ctx to end first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
