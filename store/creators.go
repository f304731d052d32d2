package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

// creatorSelect reads creators with their user's handle; callers append the
// WHERE clause.
const creatorSelect = `SELECT c.id, c.user_id, u.handle, c.display_name, c.bio, c.follower_count, c.created_at, c.version
	FROM creators c JOIN users u ON u.id = c.user_id`

// CreateCreator makes the user a creator; a second time is CONFLICT, an
// unknown user NOT_FOUND.
func (db *DB) CreateCreator(ctx context.Context, userID int64, displayName, bio string) (*domain.Creator, error) {
	var c *domain.Creator
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		var id int64
		err := tx.QueryRowxContext(ctx, `INSERT INTO creators (user_id, display_name, bio, created_at)
			VALUES ($1, $2, $3, $4) RETURNING id`, userID, displayName, bio, db.now()).Scan(&id)
		if isForeignKeyViolation(err, "creators_user_id_fkey") {
			return domain.Errorf(domain.NotFound, "user not found")
		}
		if err != nil {
			return mapError(err, "make user #%d a creator", userID)
		}
		if c, err = creatorByID(ctx, tx, id); err != nil {
			return err
		}
		// Lists of creators on every instance hear of the newcomer from this event.
		err = db.creatorChanged(ctx, tx, domain.CreatorPayload{CreatorID: id, Version: c.Version, UserID: userID, Created: true})
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, auditBy(ctx, userID, "creator.create", "creator", id,
			map[string]any{"displayName": displayName, "bio": bio}))
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// creatorByID reads one creator inside tx; NOT_FOUND when there is none.
func creatorByID(ctx context.Context, q sqlx.QueryerContext, id int64) (*domain.Creator, error) {
	var c domain.Creator
	err := sqlx.GetContext(ctx, q, &c, creatorSelect+` WHERE c.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Errorf(domain.NotFound, "creator not found")
	}
	if err != nil {
		return nil, mapError(err, "read creator #%d", id)
	}
	return &c, nil
}

// CreatorsByIDs returns the creators with the given ids, in no particular
// order; ids that match nothing are left out.
func (db *DB) CreatorsByIDs(ctx context.Context, ids []int64) ([]domain.Creator, error) {
	return db.creatorsWhere(ctx, `c.id = ANY($1)`, ids)
}

// CreatorByUserID returns the creators of the given users, in no particular
// order; users who are not creators are left out.
func (db *DB) CreatorByUserID(ctx context.Context, userIDs []int64) ([]domain.Creator, error) {
	return db.creatorsWhere(ctx, `c.user_id = ANY($1)`, userIDs)
}

func (db *DB) creatorsWhere(ctx context.Context, cond string, ids []int64) ([]domain.Creator, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var cs []domain.Creator
	if err := db.SelectContext(ctx, &cs, creatorSelect+` WHERE `+cond, pq.Array(ids)); err != nil {
		return nil, mapError(err, "read creators where %s (%d ids)", cond, len(ids))
	}
	return cs, nil
}

// CreatorByHandle returns the creator whose user has handle, in any letter
// case; NOT_FOUND when there is none.
func (db *DB) CreatorByHandle(ctx context.Context, handle string) (*domain.Creator, error) {
	var c domain.Creator
	err := db.GetContext(ctx, &c, creatorSelect+` WHERE lower(u.handle) = lower($1)`, handle)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.Errorf(domain.NotFound, "creator not found")
	}
	if err != nil {
		return nil, mapError(err, "read creator %q", handle)
	}
	return &c, nil
}

// Creators pages through all creators, oldest first.
func (db *DB) Creators(ctx context.Context, p PageArgs) (Page[domain.Creator], error) {
	cond, order, limit, args := keyset{At: "c.created_at", ID: "c.id"}.clause(p, 1)
	var cs []domain.Creator
	q := fmt.Sprintf(`%s WHERE %s ORDER BY %s LIMIT %d`, creatorSelect, cond, order, limit)
	if err := db.SelectContext(ctx, &cs, q, args...); err != nil {
		return Page[domain.Creator]{}, mapError(err, "list creators")
	}
	return page(cs, p, func(c domain.Creator) Cursor { return Cursor{At: c.CreatedAt, ID: c.ID} }), nil
}

// isForeignKeyViolation reports whether err violates the named foreign key.
func isForeignKeyViolation(err error, constraint string) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23503" && pqErr.Constraint == constraint
}

// creatorChanged writes the CreatorUpdated event of p inside tx.
func (db *DB) creatorChanged(ctx context.Context, tx *sqlx.Tx, p domain.CreatorPayload) error {
	ev, err := NewEvent(domain.EventCreatorUpdated, "creator:"+strconv.FormatInt(p.CreatorID, 10), p, db.now())
	if err != nil {
		return err
	}
	return insertOutbox(ctx, tx, db.Topic, ev)
}
