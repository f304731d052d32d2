package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
)

// healthz says the process serves; it checks nothing else, so a slow
// database never gets a live instance restarted.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, readiness{Status: "ok"})
}

// checkFailure is what /readyz tells about a failed check: its name and
// "timeout" or "unavailable". The cause is logged, never sent.
type checkFailure struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// readiness is the body of /readyz.
type readiness struct {
	Status string         `json:"status"`
	Failed []checkFailure `json:"failed,omitempty"`
}

// readyz runs every check at once, each within checkTimeout, and answers
// 200 when all pass, 503 naming those that did not.
func readyz(log *slog.Logger, checks []Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One slot per check, in the order of Options.Ready.
		results := make([]*checkFailure, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
				defer cancel()
				err := runCheck(ctx, c)
				if err == nil {
					return
				}
				reason := "unavailable"
				if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
					reason = "timeout"
				}
				log.WarnContext(r.Context(), "readiness check failed", "check", c.Name, "error", err)
				results[i] = &checkFailure{Name: c.Name, Reason: reason}
			})
		}
		wg.Wait()
		var failed []checkFailure
		for _, f := range results {
			if f != nil {
				failed = append(failed, *f)
			}
		}
		if len(failed) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "unavailable", Failed: failed})
			return
		}
		writeJSON(w, http.StatusOK, readiness{Status: "ok"})
	})
}

// runCheck runs c, giving up when ctx ends even if the check does not.
func runCheck(ctx context.Context, c Check) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- errors.New("check panicked")
			}
		}()
		done <- c.Fn(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
