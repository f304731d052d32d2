// Package store owns every SQL statement of Live Drops: one file per table
// family, transactions opened by exported methods, keyset cursors in cursor.go.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepg "github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"livedrops/domain"
	"livedrops/migrations"
)

// DB is the PostgreSQL handle every store method hangs on.
type DB struct {
	*sqlx.DB
	// Now is the clock; tests replace it so expiry and scheduling need no sleep.
	Now func() time.Time
	// OnQuery, when set, is called once per statement sent (tests count queries with it).
	OnQuery func()
	// Statements counts every query and exec sent to PostgreSQL through this
	// handle, so tests can prove a read is batched.
	Statements atomic.Int64
	// Topic is the Kafka topic outbox events are written for.
	Topic string
	// OnCommit, when set, is given the events a transaction wrote, once it
	// has committed: this instance's caches apply them before Kafka brings
	// them back, so a writer reads its own writes.
	OnCommit func(ctx context.Context, events []domain.Event)
}

// written holds, per open transaction of a DB with OnCommit, the events it
// wrote to the outbox.
var written sync.Map // *sqlx.Tx → []domain.Event

// Open connects to PostgreSQL and checks the connection.
func Open(ctx context.Context, url string) (*DB, error) {
	connector, err := pq.NewConnector(url)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	d := &DB{Now: time.Now, Topic: "livedrops.events"}
	db := sqlx.NewDb(sql.OpenDB(&countingConnector{Connector: connector, db: d}), "postgres")
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	d.DB = db
	return d, nil
}

// Migrate applies every pending migration. golang-migrate holds a PostgreSQL
// advisory lock meanwhile, so many instances may start at once.
func (db *DB) Migrate() error {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return fmt.Errorf("store: migrations source: %w", err)
	}
	drv, err := migratepg.WithInstance(db.DB.DB, &migratepg.Config{})
	if err != nil {
		return fmt.Errorf("store: migrations driver: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", drv)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("store: migrate up: %w", err)
	}
	return nil
}

// now returns the store's clock reading, truncated to PostgreSQL's precision.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// counted notes one statement sent, for Statements and OnQuery.
func (db *DB) counted() {
	db.Statements.Add(1)
	if db.OnQuery != nil {
		db.OnQuery()
	}
}

// inTx runs fn in one transaction, committing when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if db.OnCommit != nil {
		written.Store(tx, []domain.Event(nil))
		defer written.Delete(tx)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	if evs, ok := written.Load(tx); ok && len(evs.([]domain.Event)) > 0 {
		db.OnCommit(ctx, evs.([]domain.Event))
	}
	return nil
}

// Transient reports whether err is a failure a transaction may meet through
// no fault of its own and a retry may not: a serialization failure, a
// deadlock, or a lost connection. A connection lost at commit may have
// committed, so only an idempotent transaction is retried on it.
func Transient(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch c := pqErr.Code; {
		case c == "40001", c == "40P01": // serialization failure, deadlock
			return true
		case c.Class() == "08": // connection exception
			return true
		case c.Class() == "57" && c != "57014": // the server ended the session; 57014 is a cancel
			return true
		}
		return false
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Constraint violations that are the client's doing, by constraint name.
var constraintErrors = map[string]*domain.Error{
	"users_handle_key":     domain.InvalidInput("handle", "that handle is taken"),
	"creators_user_id_key": domain.Errorf(domain.Conflict, "you are already a creator"),
	"inventory_balance":    domain.Errorf(domain.SoldOut, "not enough stock left"),
}

// mapError turns a known constraint violation into the domain error a client
// should see, and wraps anything else with what was being attempted.
func mapError(err error, attempt string, args ...any) error {
	if err == nil {
		return nil
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		if e, ok := constraintErrors[pqErr.Constraint]; ok {
			out := *e // a copy: callers may not change the shared one
			return &out
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Errorf(domain.NotFound, "not found")
	}
	return fmt.Errorf("store: "+attempt+": %w", append(args, err)...)
}

// Audit is one audit_log row, written in the transaction of the change.
type Audit struct {
	Actor     string
	Action    string
	Entity    string
	EntityID  int64
	Data      any
	RequestID string
}

// writeAudit appends an audit row inside tx.
func writeAudit(ctx context.Context, tx *sqlx.Tx, a Audit) error {
	return writeAudits(ctx, tx, []Audit{a})
}

// writeAudits appends audit rows inside tx, in one statement.
func writeAudits(ctx context.Context, tx *sqlx.Tx, audits []Audit) error {
	if len(audits) == 0 {
		return nil
	}
	n := len(audits)
	actors, actions, entities, data, requests := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ids := make([]int64, n)
	for i, a := range audits {
		d, err := jsonOf(a.Data)
		if err != nil {
			return err
		}
		actors[i], actions[i], entities[i], ids[i], data[i], requests[i] = a.Actor, a.Action, a.Entity, a.EntityID, string(d), a.RequestID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (actor, action, entity, entity_id, data, request_id)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::jsonb[], $6::text[])`,
		pq.Array(actors), pq.Array(actions), pq.Array(entities), pq.Array(ids), pq.Array(data), pq.Array(requests))
	return mapError(err, "write %d audit rows (first %s %s #%d)", n, audits[0].Action, audits[0].Entity, audits[0].EntityID)
}
