package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"livedrops/domain"
)

// RevokeSession records that userID's session ends now, though its token
// would live until expires, and writes SessionRevoked for every instance.
// Revoking a session twice writes nothing the second time and reports false.
func (db *DB) RevokeSession(ctx context.Context, session string, userID int64, expires time.Time) (revoked bool, err error) {
	err = db.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, user_id, expires_at)
			VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING`, session, userID, expires)
		if err != nil {
			return mapError(err, "revoke a session of user #%d", userID)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		revoked = true
		if err := writeAudit(ctx, tx, auditBy(ctx, userID, "session.revoke", "user", userID,
			map[string]any{"expiresAt": expires})); err != nil {
			return err
		}
		ev, err := NewEvent(domain.EventSessionRevoked, "session:"+session,
			domain.SessionPayload{Session: session, ExpiresAt: expires}, db.now())
		if err != nil {
			return err
		}
		return insertOutbox(ctx, tx, db.Topic, ev)
	})
	return revoked, err
}

// SessionRevoked reports whether session was revoked and its token has not
// expired yet.
func (db *DB) SessionRevoked(ctx context.Context, session string) (bool, error) {
	var revoked bool
	err := db.GetContext(ctx, &revoked, `SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1 AND expires_at > now())`, session)
	return revoked, mapError(err, "read a session's revocation")
}

// RevokedSessions returns every revoked session whose token has not expired.
func (db *DB) RevokedSessions(ctx context.Context) ([]domain.SessionPayload, error) {
	var out []domain.SessionPayload
	err := db.SelectContext(ctx, &out, `SELECT jti AS session, expires_at FROM revoked_tokens WHERE expires_at > now()`)
	return out, mapError(err, "list revoked sessions")
}
