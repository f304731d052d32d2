package store

import (
	"context"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
)

// EventNotificationsCreated is written once per batch of notifications the
// notifier inserts, keyed by the drop: one event per follower would flood the
// bus for a creator with millions of followers, while one per batch lets every
// instance's live hub pick out the followers connected to it.
const EventNotificationsCreated = "NotificationsCreated"

// NotificationsCreatedPayload is the payload of NotificationsCreated: what the
// batch's notifications share, once, and who each one is for.
type NotificationsCreatedPayload struct {
	DropID        int64                   `json:"dropId"`
	CreatorID     int64                   `json:"creatorId"`
	Kind          domain.NotificationKind `json:"kind"`
	CreatedAt     time.Time               `json:"createdAt"`
	Notifications []NotificationRef       `json:"notifications"`
}

// NotificationRef names one notification of a NotificationsCreated batch.
type NotificationRef struct {
	ID     int64 `json:"id"`
	UserID int64 `json:"userId"`
}

const notificationColumns = `id, user_id, kind, drop_id, creator_id, created_at, read_at`

// InsertNotificationsForFollowers writes one notification of kind about the
// drop for each of the next batch followers of the creator whose user id is
// above afterFollowerID, in one short transaction with one
// NotificationsCreated outbox event for the rows really inserted. A follower
// already notified (same user, drop and kind) is left alone, so walking the
// followers again after a failure or a redelivery writes nothing twice.
// lastFollowerID is where the next batch starts; done says there is none.
func (db *DB) InsertNotificationsForFollowers(ctx context.Context, creatorID, dropID int64, kind domain.NotificationKind,
	afterFollowerID int64, batch int) (inserted []domain.Notification, lastFollowerID int64, done bool, err error) {
	if batch <= 0 {
		batch = 1000
	}
	now := db.now()
	err = db.inTx(ctx, func(tx *sqlx.Tx) error {
		var followers []int64
		err := tx.SelectContext(ctx, &followers, `SELECT follower_id FROM follows
			WHERE creator_id = $1 AND follower_id > $2 ORDER BY follower_id LIMIT $3`, creatorID, afterFollowerID, batch)
		if err != nil {
			return mapError(err, "read followers of creator #%d after user #%d", creatorID, afterFollowerID)
		}
		done = len(followers) < batch
		lastFollowerID = afterFollowerID
		if len(followers) == 0 {
			return nil
		}
		lastFollowerID = followers[len(followers)-1]
		// In follower order, so two notifiers walking the same batch take the
		// unique index's locks in the same order and cannot deadlock.
		err = tx.SelectContext(ctx, &inserted, `INSERT INTO notifications (user_id, kind, drop_id, creator_id, created_at)
			SELECT f, $2, $3, $4, $5 FROM unnest($1::bigint[]) AS f ORDER BY f
			ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
			RETURNING `+notificationColumns,
			pq.Array(followers), string(kind), dropID, creatorID, now)
		if err != nil {
			return mapError(err, "notify %d followers of creator #%d about drop #%d", len(followers), creatorID, dropID)
		}
		if len(inserted) == 0 {
			return nil
		}
		refs := make([]NotificationRef, len(inserted))
		for i, n := range inserted {
			refs[i] = NotificationRef{ID: n.ID, UserID: n.UserID}
		}
		ev, err := NewEvent(EventNotificationsCreated, dropKey(dropID), NotificationsCreatedPayload{
			DropID: dropID, CreatorID: creatorID, Kind: kind, CreatedAt: now, Notifications: refs,
		}, now)
		if err != nil {
			return err
		}
		if err := insertOutbox(ctx, tx, db.Topic, ev); err != nil {
			return err
		}
		return writeAudit(ctx, tx, auditBy(ctx, 0, "notifications.create", "drop", dropID, map[string]any{
			"kind": kind, "count": len(inserted), "afterFollowerId": afterFollowerID, "lastFollowerId": lastFollowerID,
		}))
	})
	if err != nil {
		return nil, afterFollowerID, false, err
	}
	return inserted, lastFollowerID, done, nil
}

// EventConsumed reports whether consumer has recorded the event as applied.
func (db *DB) EventConsumed(ctx context.Context, consumer, eventID string) (bool, error) {
	var seen bool
	err := db.GetContext(ctx, &seen, `SELECT EXISTS (SELECT 1 FROM consumed_events WHERE consumer = $1 AND event_id = $2)`,
		consumer, eventID)
	return seen, mapError(err, "read whether %s consumed event %s", consumer, eventID)
}

// MarkEventConsumed records that consumer has applied the event; marking it
// again changes nothing.
func (db *DB) MarkEventConsumed(ctx context.Context, consumer, eventID string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO consumed_events (consumer, event_id, at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, consumer, eventID, db.now())
	return mapError(err, "record that %s consumed event %s", consumer, eventID)
}

// NotificationsByIDs returns the notifications with the given ids, in no
// particular order; ids that match nothing are left out. It does not check
// whose they are: callers do.
func (db *DB) NotificationsByIDs(ctx context.Context, ids []int64) ([]domain.Notification, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []domain.Notification
	err := db.SelectContext(ctx, &out, `SELECT `+notificationColumns+` FROM notifications WHERE id = ANY($1)`, pq.Array(ids))
	return out, mapError(err, "read %d notifications by id", len(ids))
}

// MarkNotificationsRead marks the user's unread notifications among ids as
// read, or all of them when ids is nil, and returns how many it marked.
// Notifications of other users and ones already read are left alone.
func (db *DB) MarkNotificationsRead(ctx context.Context, userID int64, ids []int64) (int, error) {
	if ids != nil && len(ids) == 0 {
		return 0, nil
	}
	var n int
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		q := `UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL`
		args := []any{userID, db.now()}
		if ids != nil {
			q += ` AND id = ANY($3)`
			args = append(args, pq.Array(ids))
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return mapError(err, "mark notifications of user #%d read", userID)
		}
		marked, err := res.RowsAffected()
		if err != nil {
			return mapError(err, "count notifications of user #%d marked read", userID)
		}
		n = int(marked)
		if n == 0 {
			return nil
		}
		return writeAudit(ctx, tx, auditBy(ctx, userID, "notifications.read", "user", userID,
			map[string]any{"count": n, "all": ids == nil}))
	})
	return n, err
}

// Unread-first order: unread notifications newest first, then read ones newest
// first. A read notification's sort time is its creation time moved back by
// notificationReadShift, so the usual (time, id) cursor also says which of the
// two runs it lies in: a cursor time before notificationReadRunBefore is in the
// read run. This holds for notifications created between 1900 and 2100.
const notificationReadShift = 200 * 365 * 24 * time.Hour

var notificationReadRunBefore = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// notificationsNewestFirst is the order of a user's notifications within one run.
var notificationsNewestFirst = keyset{At: "created_at", ID: "id", Desc: true}

func notificationCursor(n domain.Notification) Cursor { return Cursor{At: n.CreatedAt, ID: n.ID} }

func unreadFirstCursor(n domain.Notification) Cursor {
	if n.ReadAt == nil {
		return notificationCursor(n)
	}
	return Cursor{At: n.CreatedAt.Add(-notificationReadShift), ID: n.ID}
}

// NotificationsOf returns a page of the user's notifications, newest first;
// with unreadFirst, the unread ones come first (newest first), then the read
// ones. Reading an item while paging may move it to the other run, so it can
// show up twice or not at all in that walk; the cursors stay valid.
func (db *DB) NotificationsOf(ctx context.Context, userID int64, unreadFirst bool, p PageArgs) (Page[domain.Notification], error) {
	pages, err := db.NotificationsOfUsers(ctx, []int64{userID}, unreadFirst, p)
	return pages[userID], err
}

// NotificationsOfUsers returns the page p of each user's notifications, in
// NotificationsOf's order, in one statement. Callers make sure the viewer may
// see them.
func (db *DB) NotificationsOfUsers(ctx context.Context, userIDs []int64, unreadFirst bool, p PageArgs) (map[int64]Page[domain.Notification], error) {
	const sel = `SELECT ` + notificationColumns + ` FROM notifications WHERE user_id = parent.id`
	owner := func(n domain.Notification) int64 { return n.UserID }
	const attempt = "list notifications of users"
	if !unreadFirst {
		body, args := notificationsNewestFirst.lateral(sel, p, 2)
		return pagesOf(ctx, db, userIDs, body, args, notificationsNewestFirst, p, owner, notificationCursor, attempt)
	}

	// Each run is read with its own (created_at, id) bounds: a cursor in the
	// other run either bounds nothing or rules the whole run out.
	unread := notificationRun{filter: "read_at IS NULL"}
	read := notificationRun{filter: "read_at IS NOT NULL"}
	if c := p.After; c != nil {
		if c.At.Before(notificationReadRunBefore) {
			unread.skip = true
			read.after = &Cursor{At: c.At.Add(notificationReadShift), ID: c.ID}
		} else {
			unread.after = c
		}
	}
	if c := p.Before; c != nil {
		if c.At.Before(notificationReadRunBefore) {
			read.before = &Cursor{At: c.At.Add(notificationReadShift), ID: c.ID}
		} else {
			read.skip = true
			unread.before = c
		}
	}
	// Both runs are read in full pages; pagesOf sorts them by unreadFirstCursor
	// (unread before read) and keeps the page's worth.
	bodies, args := []string{}, []any{}
	for _, r := range []notificationRun{unread, read} {
		if r.skip {
			continue
		}
		body, rargs := notificationsNewestFirst.lateral(sel+` AND `+r.filter,
			PageArgs{Limit: p.Limit, Back: p.Back, After: r.after, Before: r.before}, len(args)+2)
		bodies, args = append(bodies, body), append(args, rargs...)
	}
	if len(bodies) == 0 {
		bodies = []string{sel + ` AND FALSE`} // after a read cursor and before an unread one: nothing
	}
	return pagesOf(ctx, db, userIDs, strings.Join(bodies, " UNION ALL "), args, notificationsNewestFirst, p,
		owner, unreadFirstCursor, attempt)
}

// notificationRun is one of the two runs of the unread-first order.
type notificationRun struct {
	filter        string
	after, before *Cursor
	skip          bool
}
