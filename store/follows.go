package store

import (
	"context"
	"database/sql"
	"errors"
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
			p := domain.CreatorPayload{UserID: followerID}
			err := tx.QueryRowxContext(ctx, `UPDATE creators SET follower_count = follower_count + $2, version = version + 1
				WHERE id = $1 RETURNING id, follower_count, version`, creatorID, delta).Scan(&p.CreatorID, &p.FollowerCount, &p.Version)
			if err != nil {
				return mapError(err, "count follower of creator #%d", creatorID)
			}
			// Every instance's caches hear of the new count from this event.
			if err := db.creatorChanged(ctx, tx, p); err != nil {
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

// followedUser is a follower with the creator followed and the time they
// followed, the sort key.
type followedUser struct {
	domain.User
	CreatorID  int64     `db:"creator_id"`
	FollowedAt time.Time `db:"followed_at"`
}

// followedCreator is a followed creator with its follower and the time of the follow.
type followedCreator struct {
	domain.Creator
	FollowerID int64     `db:"follower_id"`
	FollowedAt time.Time `db:"followed_at"`
}

// Followers pages through a creator's followers, newest follow first.
func (db *DB) Followers(ctx context.Context, creatorID int64, p PageArgs) (Page[domain.User], error) {
	pages, err := db.FollowersOf(ctx, []int64{creatorID}, p)
	return pages[creatorID], err
}

// FollowersOf returns the page p of each creator's followers, newest follow
// first, in one statement.
func (db *DB) FollowersOf(ctx context.Context, creatorIDs []int64, p PageArgs) (map[int64]Page[domain.User], error) {
	k := keyset{At: "f.created_at", ID: "f.follower_id", Desc: true}
	body, args := k.lateral(`SELECT `+userColumns+`, f.creator_id, f.created_at AS followed_at
		FROM follows f JOIN users u ON u.id = f.follower_id WHERE f.creator_id = parent.id`, p, 2)
	pages, err := pagesOf(ctx, db, creatorIDs, body, args, k, p,
		func(r followedUser) int64 { return r.CreatorID },
		func(r followedUser) Cursor { return Cursor{At: r.FollowedAt, ID: r.ID} }, "list followers of creators")
	return pagesOfEach(pages, err, func(r followedUser) domain.User { return r.User })
}

// Following pages through the creators a user follows, newest follow first.
func (db *DB) Following(ctx context.Context, userID int64, p PageArgs) (Page[domain.Creator], error) {
	pages, err := db.FollowingOf(ctx, []int64{userID}, p)
	return pages[userID], err
}

// FollowingOf returns the page p of the creators each user follows, newest
// follow first, in one statement.
func (db *DB) FollowingOf(ctx context.Context, userIDs []int64, p PageArgs) (map[int64]Page[domain.Creator], error) {
	k := keyset{At: "f.created_at", ID: "f.creator_id", Desc: true}
	body, args := k.lateral(`SELECT c.id, c.user_id, u.handle, c.display_name, c.bio, c.follower_count, c.created_at,
			c.version, f.follower_id, f.created_at AS followed_at
		FROM follows f JOIN creators c ON c.id = f.creator_id JOIN users u ON u.id = c.user_id
		WHERE f.follower_id = parent.id`, p, 2)
	pages, err := pagesOf(ctx, db, userIDs, body, args, k, p,
		func(r followedCreator) int64 { return r.FollowerID },
		func(r followedCreator) Cursor { return Cursor{At: r.FollowedAt, ID: r.ID} }, "list creators followed by users")
	return pagesOfEach(pages, err, func(r followedCreator) domain.Creator { return r.Creator })
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

// pagesOfEach converts the items of every page of a batched read.
func pagesOfEach[T, U any](pages map[int64]Page[T], err error, f func(T) U) (map[int64]Page[U], error) {
	if err != nil {
		return nil, err
	}
	out := make(map[int64]Page[U], len(pages))
	for id, pg := range pages {
		out[id] = pageOf(pg, f)
	}
	return out, nil
}
