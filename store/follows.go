package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

// Follow makes followerID follow creatorID and returns the creator with its
// new count. Following twice changes nothing: the count moves only when a row
// was really inserted, so it stays exact under concurrent calls.
func (db *DB) Follow(ctx context.Context, creatorID, followerID int64) (*domain.Creator, error) {
	return db.changeFollow(ctx, creatorID, followerID, true)
}

// Unfollow undoes Follow; unfollowing a creator not followed changes nothing.
func (db *DB) Unfollow(ctx context.Context, creatorID, followerID int64) (*domain.Creator, error) {
	return db.changeFollow(ctx, creatorID, followerID, false)
}

func (db *DB) changeFollow(ctx context.Context, creatorID, followerID int64, follow bool) (*domain.Creator, error) {
	var c *domain.Creator
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		var ownerID int64
		err := tx.QueryRowxContext(ctx, `SELECT user_id FROM creators WHERE id = $1`, creatorID).Scan(&ownerID)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.NotFound, "creator not found")
		}
		if err != nil {
			return mapError(err, "read creator #%d", creatorID)
		}
		if ownerID == followerID {
			return domain.InvalidInput("creatorId", "you cannot follow yourself")
		}
		changed, err := db.writeFollow(ctx, tx, creatorID, followerID, follow)
		if err != nil {
			return err
		}
		if changed {
			delta, action := 1, "creator.follow"
			if !follow {
				delta, action = -1, "creator.unfollow"
			}
			var p domain.CreatorPayload
			err := tx.QueryRowxContext(ctx, `UPDATE creators SET follower_count = follower_count + $2, version = version + 1
				WHERE id = $1 RETURNING id, follower_count, version`, creatorID, delta).Scan(&p.CreatorID, &p.FollowerCount, &p.Version)
			if err != nil {
				return mapError(err, "count follower of creator #%d", creatorID)
			}
			// Every instance's caches hear of the new count from this event.
			ev, err := NewEvent(domain.EventCreatorUpdated, "creator:"+strconv.FormatInt(creatorID, 10), p, db.now())
			if err != nil {
				return err
			}
			if err := insertOutbox(ctx, tx, db.Topic, ev); err != nil {
				return err
			}
			err = writeAudit(ctx, tx, auditBy(ctx, followerID, action, "creator", creatorID, map[string]any{"followerId": followerID}))
			if err != nil {
				return err
			}
		}
		c, err = creatorByID(ctx, tx, creatorID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// writeFollow inserts or deletes the follows row and reports whether a row
// was really written; a concurrent twin waits on the row and then sees it.
func (db *DB) writeFollow(ctx context.Context, tx *sqlx.Tx, creatorID, followerID int64, follow bool) (bool, error) {
	var res sql.Result
	var err error
	if follow {
		res, err = tx.ExecContext(ctx, `INSERT INTO follows (creator_id, follower_id, created_at)
			VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, creatorID, followerID, db.now())
		if isForeignKeyViolation(err, "follows_follower_id_fkey") {
			return false, domain.Errorf(domain.NotFound, "user not found")
		}
	} else {
		res, err = tx.ExecContext(ctx, `DELETE FROM follows WHERE creator_id = $1 AND follower_id = $2`, creatorID, followerID)
	}
	if err != nil {
		return false, mapError(err, "write follow of creator #%d by user #%d", creatorID, followerID)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, mapError(err, "count follow rows of creator #%d by user #%d", creatorID, followerID)
	}
	return n == 1, nil
}

// followedUser is a follower with the time they followed, the sort key.
type followedUser struct {
	domain.User
	FollowedAt time.Time `db:"followed_at"`
}

// followedCreator is a followed creator with the time of the follow.
type followedCreator struct {
	domain.Creator
	FollowedAt time.Time `db:"followed_at"`
}

// Followers pages through a creator's followers, newest follow first.
func (db *DB) Followers(ctx context.Context, creatorID int64, p PageArgs) (Page[domain.User], error) {
	cond, order, limit, args := keyset{At: "f.created_at", ID: "f.follower_id", Desc: true}.clause(p, 2)
	q := fmt.Sprintf(`SELECT %s, f.created_at AS followed_at
		FROM follows f JOIN users u ON u.id = f.follower_id
		WHERE f.creator_id = $1 AND %s ORDER BY %s LIMIT %d`, userColumns, cond, order, limit)
	var rows []followedUser
	if err := db.SelectContext(ctx, &rows, q, append([]any{creatorID}, args...)...); err != nil {
		return Page[domain.User]{}, mapError(err, "list followers of creator #%d", creatorID)
	}
	pg := page(rows, p, func(r followedUser) Cursor { return Cursor{At: r.FollowedAt, ID: r.ID} })
	return pageOf(pg, func(r followedUser) domain.User { return r.User }), nil
}

// Following pages through the creators a user follows, newest follow first.
func (db *DB) Following(ctx context.Context, userID int64, p PageArgs) (Page[domain.Creator], error) {
	cond, order, limit, args := keyset{At: "f.created_at", ID: "f.creator_id", Desc: true}.clause(p, 2)
	q := fmt.Sprintf(`SELECT c.id, c.user_id, u.handle, c.display_name, c.bio, c.follower_count, c.created_at,
			c.version, f.created_at AS followed_at
		FROM follows f JOIN creators c ON c.id = f.creator_id JOIN users u ON u.id = c.user_id
		WHERE f.follower_id = $1 AND %s ORDER BY %s LIMIT %d`, cond, order, limit)
	var rows []followedCreator
	if err := db.SelectContext(ctx, &rows, q, append([]any{userID}, args...)...); err != nil {
		return Page[domain.Creator]{}, mapError(err, "list creators followed by user #%d", userID)
	}
	pg := page(rows, p, func(r followedCreator) Cursor { return Cursor{At: r.FollowedAt, ID: r.ID} })
	return pageOf(pg, func(r followedCreator) domain.Creator { return r.Creator }), nil
}

// FollowsOf reports, for each of creatorIDs, whether followerID follows it.
// Every asked id has an entry, so a cache can store the negatives too.
func (db *DB) FollowsOf(ctx context.Context, followerID int64, creatorIDs []int64) (map[int64]bool, error) {
	out := make(map[int64]bool, len(creatorIDs))
	if len(creatorIDs) == 0 {
		return out, nil
	}
	var followed []int64
	err := db.SelectContext(ctx, &followed, `SELECT creator_id FROM follows
		WHERE follower_id = $1 AND creator_id = ANY($2)`, followerID, pq.Array(creatorIDs))
	if err != nil {
		return nil, mapError(err, "read follows of user #%d", followerID)
	}
	for _, id := range creatorIDs {
		out[id] = false
	}
	for _, id := range followed {
		out[id] = true
	}
	return out, nil
}

// pageOf converts a page's items, keeping its cursors and flags.
func pageOf[T, U any](pg Page[T], f func(T) U) Page[U] {
	items := make([]U, len(pg.Items))
	for i, it := range pg.Items {
		items[i] = f(it)
	}
	return Page[U]{Items: items, Cursors: pg.Cursors, HasNext: pg.HasNext, HasPrev: pg.HasPrev}
}
