package auth

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"livedrops/domain"
)

// Revoked is this instance's set of revoked sessions, each kept until its
// token would have expired anyway. It is what every request checks, so an
// authenticated read costs a map lookup, not a round trip: sessions revoked
// elsewhere reach it as SessionRevoked events (and the ones revoked before
// this instance started are loaded from PostgreSQL at start).
type Revoked struct {
	now func() time.Time

	mu       sync.RWMutex
	sessions map[string]time.Time // session id → its token's expiry
	watchers map[string]map[*func()]struct{}
	swept    time.Time
}

// sweepEvery is how often Add forgets sessions whose tokens have expired.
const sweepEvery = time.Minute

// NewRevoked returns an empty set; now is the clock (nil: time.Now).
func NewRevoked(now func() time.Time) *Revoked {
	if now == nil {
		now = time.Now
	}
	return &Revoked{now: now, sessions: map[string]time.Time{}, watchers: map[string]map[*func()]struct{}{}}
}

// Add records that session is revoked until expires and ends every stream
// watching it. Adding a session twice changes nothing.
func (r *Revoked) Add(session string, expires time.Time) {
	now := r.now()
	if !now.Before(expires) || session == "" {
		return
	}
	r.mu.Lock()
	r.sessions[session] = expires
	if now.Sub(r.swept) > sweepEvery {
		r.swept = now
		for s, exp := range r.sessions {
			if !now.Before(exp) {
				delete(r.sessions, s)
			}
		}
	}
	fired := r.watchers[session]
	delete(r.watchers, session)
	r.mu.Unlock()
	for fn := range fired {
		(*fn)()
	}
}

// Has reports whether session is revoked.
func (r *Revoked) Has(session string) bool {
	r.mu.RLock()
	_, ok := r.sessions[session]
	r.mu.RUnlock()
	return ok
}

// Watch calls revoked once if session is revoked before stop is called (at
// once if it is already).
func (r *Revoked) Watch(session string, revoked func()) (stop func()) {
	r.mu.Lock()
	if _, ok := r.sessions[session]; ok {
		r.mu.Unlock()
		revoked()
		return func() {}
	}
	key := &revoked
	if r.watchers[session] == nil {
		r.watchers[session] = map[*func()]struct{}{}
	}
	r.watchers[session][key] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if w := r.watchers[session]; w != nil {
			delete(w, key)
			if len(w) == 0 {
				delete(r.watchers, session)
			}
		}
	}
}

// SessionEnded is why a stream's context ends when its session does; a
// WebSocket closes with 4401 and Error as the reason.
type SessionEnded struct{ reason string }

func (e SessionEnded) Error() string { return e.reason }

// SessionEnded marks the error for httpapi, which knows it by this method.
func (SessionEnded) SessionEnded() {}

var (
	errSessionExpired = SessionEnded{"your session has expired; log in again"}
	errSessionRevoked = SessionEnded{"your session was ended; log in again"}
)

// SessionContext returns a context that ends, with a SessionEnded cause, when
// v's session expires or is revoked: the context a WebSocket serves its
// viewer in. Its timer and watch go when ctx ends.
func (t *Tokens) SessionContext(ctx context.Context, v *domain.Viewer) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(v.Expires.Sub(t.now()), func() { cancel(errSessionExpired) })
	stopWatch := func() {}
	if t.revoked != nil {
		stopWatch = t.revoked.Watch(v.Session, func() { cancel(errSessionRevoked) })
	}
	context.AfterFunc(ctx, func() {
		timer.Stop()
		stopWatch()
	})
	return ctx
}

// Handle adds the session of a SessionRevoked event: the tail consumer's
// handler, so a revocation on any instance reaches this one.
func (r *Revoked) Handle(ctx context.Context, ev domain.Event) error {
	if ev.Type != domain.EventSessionRevoked {
		return nil
	}
	var p domain.SessionPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		slog.ErrorContext(ctx, "auth: skipping a SessionRevoked event whose payload cannot be read", "id", ev.ID, "err", err)
		return nil
	}
	r.Add(p.Session, p.ExpiresAt)
	return nil
}
