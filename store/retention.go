package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// DeadLetter is a Kafka message a consumer could not decode.
type DeadLetter struct {
	Source    string // the consumer's name
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Payload   []byte
	Error     string
}

// RecordDeadLetter keeps a message a consumer could not decode; the same
// message recorded again by the same consumer (another instance's tail
// consumer, a redelivery) adds nothing.
func (db *DB) RecordDeadLetter(ctx context.Context, d DeadLetter) error {
	if d.Payload == nil {
		d.Payload = []byte{}
	}
	_, err := db.ExecContext(ctx, `INSERT INTO dead_letters (source, topic, key, partition, "offset", payload, error, failed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (source, topic, partition, "offset") WHERE partition IS NOT NULL DO NOTHING`,
		d.Source, d.Topic, d.Key, d.Partition, d.Offset, d.Payload, d.Error, db.now())
	return mapError(err, "record dead letter of %s at %s[%d]@%d", d.Source, d.Topic, d.Partition, d.Offset)
}

// Pruned names a family of rows deleted once they are older than their
// retention.
type Pruned string

// The families of rows that retention prunes.
const (
	PrunedOutbox         Pruned = "outbox"          // published events only, by published_at
	PrunedConsumedEvents Pruned = "consumed_events" // by when they were consumed
	PrunedPaymentEvents  Pruned = "payment_events"  // by when the webhook came
	PrunedAuditLog       Pruned = "audit_log"       // by at
	PrunedDeadLetters    Pruned = "dead_letters"    // by failed_at
)

// pruneStatements delete at most $2 rows older than $1, found through the
// age index of each table; the age is checked again on the row deleted. An
// unpublished outbox row has no published_at and is never matched.
var pruneStatements = map[Pruned]string{
	PrunedOutbox:         pruneStatement("outbox", "published_at"),
	PrunedConsumedEvents: pruneStatement("consumed_events", "at"),
	PrunedPaymentEvents:  pruneStatement("payment_events", "received_at"),
	PrunedAuditLog:       pruneStatement("audit_log", "at"),
	PrunedDeadLetters:    pruneStatement("dead_letters", "failed_at"),
}

// pruneStatement deletes by ctid through = ANY(ARRAY(…)), which PostgreSQL
// answers with a TID scan; ctid IN (SELECT …) may hash-join a whole table.
func pruneStatement(table, age string) string {
	return `DELETE FROM ` + table + ` WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM ` + table + ` WHERE ` + age + ` < $1 LIMIT $2)) AND ` + age + ` < $1`
}

// pruneLockKey names the session advisory lock of the instance that prunes
// ("ldprune" in ASCII).
const pruneLockKey int64 = 0x6c647072756e65

// Pruning is one instance's turn at pruning: a connection of its own that
// holds the prune lock, on which every batch runs (and commits) in turn.
type Pruning struct {
	db   *DB
	conn *sqlx.Conn
}

// StartPruning takes the prune lock on a connection of its own; nil and no
// error when another instance holds it. Close the Pruning to release both.
func (db *DB) StartPruning(ctx context.Context) (*Pruning, error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: start pruning: %w", err)
	}
	var locked bool
	if err := conn.GetContext(ctx, &locked, `SELECT pg_try_advisory_lock($1)`, pruneLockKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: take the prune lock: %w", err)
	}
	if !locked {
		conn.Close()
		return nil, nil
	}
	return &Pruning{db: db, conn: conn}, nil
}

// Prune deletes at most limit rows of the family older than before, in one
// short transaction of its own, and returns how many it deleted.
func (p *Pruning) Prune(ctx context.Context, family Pruned, before time.Time, limit int) (int64, error) {
	stmt, ok := pruneStatements[family]
	if !ok || limit <= 0 {
		return 0, fmt.Errorf("store: prune %q by %d: unknown family or limit not positive", family, limit)
	}
	res, err := p.conn.ExecContext(ctx, stmt, before.UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("store: prune %s older than %s: %w", family, before.Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune %s: count deleted rows: %w", family, err)
	}
	return n, nil
}

// Now is the store's clock, which retention ages are measured against.
func (p *Pruning) Now() time.Time { return p.db.now() }

// Close releases the prune lock and the connection. A connection whose
// unlock failed is thrown away rather than pooled, so the lock goes with it.
func (p *Pruning) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, pruneLockKey); err != nil {
		_ = p.conn.Raw(func(any) error { return driver.ErrBadConn })
		p.conn.Close()
		return fmt.Errorf("store: release the prune lock: %w", err)
	}
	return p.conn.Close()
}
