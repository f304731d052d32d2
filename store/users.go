package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

// userColumns leave the password hash out: only logging in reads it
// (UserByHandle), so lists and caches never hold one.
const userColumns = `u.id, u.handle, u.display_name, u.created_at`

// CreateUser inserts a user and returns it without its hash; a handle taken
// in any letter case is BAD_USER_INPUT on handle.
func (db *DB) CreateUser(ctx context.Context, handle, displayName, passwordHash string) (*domain.User, error) {
	u := domain.User{Handle: handle, DisplayName: displayName, CreatedAt: db.now()}
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.QueryRowxContext(ctx, `INSERT INTO users (handle, display_name, password_hash, created_at)
			VALUES ($1, $2, $3, $4) RETURNING id`, handle, displayName, passwordHash, u.CreatedAt).Scan(&u.ID)
		if err != nil {
			return mapError(err, "create user %q", handle)
		}
		return writeAudit(ctx, tx, auditBy(ctx, u.ID, "user.create", "user", u.ID,
			map[string]any{"handle": handle, "displayName": displayName}))
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// UserByHandle returns the user with handle in any letter case, password hash
// included; NOT_FOUND when there is none.
func (db *DB) UserByHandle(ctx context.Context, handle string) (*domain.User, error) {
	var u domain.User
	err := db.GetContext(ctx, &u, `SELECT `+userColumns+`, u.password_hash
		FROM users u WHERE lower(u.handle) = lower($1)`, handle)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Errorf(domain.NotFound, "user not found")
	}
	if err != nil {
		return nil, mapError(err, "read user %q", handle)
	}
	return &u, nil
}

// UsersByIDs returns the users with the given ids, in no particular order,
// without password hashes; ids that match nothing are left out.
func (db *DB) UsersByIDs(ctx context.Context, ids []int64) ([]domain.User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var users []domain.User
	err := db.SelectContext(ctx, &users, `SELECT `+userColumns+` FROM users u WHERE u.id = ANY($1)`, pq.Array(ids))
	if err != nil {
		return nil, mapError(err, "read %d users", len(ids))
	}
	return users, nil
}
