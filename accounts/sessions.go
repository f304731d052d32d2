package accounts

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/auth"
	"livedrops/domain"
	"livedrops/store"
)

// Sessions ends sessions before their tokens expire and tells whether one
// was. A revocation is written to PostgreSQL (the record, with a
// SessionRevoked event for every instance's auth.Revoked) and to Redis (a
// key living as long as the token), which a token's first use on an
// instance asks: the event may not have arrived yet.
type Sessions struct {
	db      *store.DB
	rdb     redis.UniversalClient
	prefix  string
	revoked *auth.Revoked
	log     *slog.Logger
}

// redisCheckTimeout bounds the Redis question before PostgreSQL is asked
// instead.
const redisCheckTimeout = 500 * time.Millisecond

// NewSessions returns the sessions kept in db and rdb (keys under prefix);
// revoked is this instance's set, told at once of what it revokes.
func NewSessions(db *store.DB, rdb redis.UniversalClient, prefix string, revoked *auth.Revoked, log *slog.Logger) *Sessions {
	return &Sessions{db: db, rdb: rdb, prefix: prefix, revoked: revoked, log: log}
}

func (s *Sessions) key(session string) string { return s.prefix + "revoked:" + session }

// LogOut ends the viewer's current session everywhere. It reports false
// for an anonymous viewer; ending a session already ended changes nothing.
func (s *Sessions) LogOut(ctx context.Context, v *domain.Viewer) (bool, error) {
	if v == nil || v.Session == "" {
		return false, nil
	}
	if _, err := s.db.RevokeSession(ctx, v.Session, v.UserID, v.Expires); err != nil {
		return false, err
	}
	s.revoked.Add(v.Session, v.Expires)
	if life := time.Until(v.Expires); life > 0 {
		// Best effort: PostgreSQL holds the revocation and its event spreads it.
		if err := s.rdb.Set(ctx, s.key(v.Session), 1, life).Err(); err != nil {
			s.log.WarnContext(ctx, "sessions: revocation not written to Redis; PostgreSQL has it", "err", err)
		}
	}
	return true, nil
}

// SessionRevoked asks Redis whether session was revoked, and PostgreSQL when
// Redis cannot answer.
func (s *Sessions) SessionRevoked(ctx context.Context, session string) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, redisCheckTimeout)
	n, err := s.rdb.Exists(rctx, s.key(session)).Result()
	cancel()
	if err == nil {
		return n > 0, nil
	}
	revoked, err := s.db.SessionRevoked(ctx, session)
	if err != nil {
		return false, fmt.Errorf("accounts: check a session with Redis and PostgreSQL down: %w", err)
	}
	return revoked, nil
}

// Load adds every revoked session whose token still lives to this
// instance's set: those revoked before it started.
func (s *Sessions) Load(ctx context.Context) error {
	all, err := s.db.RevokedSessions(ctx)
	if err != nil {
		return err
	}
	for _, r := range all {
		s.revoked.Add(r.Session, r.ExpiresAt)
	}
	return nil
}
