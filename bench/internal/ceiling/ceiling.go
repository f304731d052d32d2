// Package ceiling measures what PostgreSQL alone sells from one hot
// inventory row: the order's conditional update and insert in one
// transaction, sent straight from many connections with no server in
// between. It is the raw ceiling the GraphQL path is compared with.
//
// Its SQL is benchmark code, deliberately outside store/: it is the bare
// minimum of an order (no idempotency lookup, limits, events or audit), so
// the gap to the real path is the price of everything else.
package ceiling

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/lib/pq"

	"livedrops/bench/internal/measure"
)

// The transaction of one attempt, as store.PlaceOrder's core does it.
const (
	takeOne = `UPDATE inventory SET available = available - 1, reserved = reserved + 1
		WHERE drop_id = $1 AND available >= 1`
	insertOrder = `INSERT INTO orders (drop_id, buyer_id, quantity, total_cents, currency, status,
			idempotency_key, request_hash, expires_at)
		VALUES ($1, $2, 1, $3, $4, 'PENDING_PAYMENT', $5, $6, now() + interval '10 minutes')
		RETURNING id`
)

// warmPatience is how long opening the connections may wait for PostgreSQL
// to have room for them.
const warmPatience = 30 * time.Second

// Config is one raw run.
type Config struct {
	DropID int64
	// Buyers are the users orders are inserted for: attempt i uses Buyers[i % len].
	Buyers []int64
	// Attempts is how many transactions are tried in all.
	Attempts int
	// KeyPrefix makes idempotency keys unique across runs: KeyPrefix + attempt number.
	KeyPrefix  string
	PriceCents int64
	Currency   string
}

// Pool is a fixed set of open connections, each running attempts back to back.
type Pool struct {
	db    *sql.DB
	conns int
}

// Open opens conns connections to databaseURL before any clock starts, so
// connection setup is never measured. PostgreSQL refusing for too many
// clients (other work holds connections) is waited out for up to warmPatience.
func Open(ctx context.Context, databaseURL string, conns int) (*Pool, error) {
	if conns < 1 {
		return nil, errors.New("ceiling: need at least one connection")
	}
	db, err := sql.Open("postgres", databaseURL)
	if err != nil {
		return nil, fmt.Errorf("ceiling: open PostgreSQL: %w", err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(0)
	if err := warm(ctx, db, conns); err != nil {
		db.Close()
		return nil, err
	}
	return &Pool{db: db, conns: conns}, nil
}

// Close closes the connections.
func (p *Pool) Close() error { return p.db.Close() }

// Run sends every attempt from all the pool's connections at once and
// returns one answer per attempt: Ordered when the transaction committed an
// order, SoldOut when the conditional update matched no row, Failed (code =
// SQLSTATE) otherwise.
func (p *Pool) Run(ctx context.Context, cfg Config) ([]measure.Answer, error) {
	if cfg.Attempts < 1 || len(cfg.Buyers) == 0 {
		return nil, errors.New("ceiling: need at least one attempt and one buyer")
	}
	db := p.db
	next := make(chan int, cfg.Attempts)
	for i := range cfg.Attempts {
		next <- i
	}
	close(next)
	answers := make([]measure.Answer, cfg.Attempts)
	var (
		wg       sync.WaitGroup
		fatalMu  sync.Mutex
		fatalErr error
	)
	for range p.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				a, err := attempt(ctx, db, cfg, i)
				if err != nil {
					fatalMu.Lock()
					fatalErr = errors.Join(fatalErr, err)
					fatalMu.Unlock()
					return
				}
				answers[i] = a
			}
		}()
	}
	wg.Wait()
	if fatalErr != nil {
		return nil, fatalErr
	}
	return answers, nil
}

// warm opens n connections and gives them back to the pool idle.
func warm(ctx context.Context, db *sql.DB, n int) error {
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	deadline := time.Now().Add(warmPatience)
	for len(conns) < n {
		c, err := db.Conn(ctx)
		if err == nil {
			if err = c.PingContext(ctx); err == nil {
				conns = append(conns, c)
				continue
			}
			c.Close()
		}
		var pqErr *pq.Error
		if !errors.As(err, &pqErr) || pqErr.Code != "53300" || time.Now().After(deadline) {
			return fmt.Errorf("ceiling: open connection %d of %d: %w", len(conns)+1, n, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ceiling: open connections: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// attempt runs attempt i. Only a context that ended is an error: a failed
// transaction is an answer like any other.
func attempt(ctx context.Context, db *sql.DB, cfg Config, i int) (measure.Answer, error) {
	key := cfg.KeyPrefix + strconv.Itoa(i)
	buyer := cfg.Buyers[i%len(cfg.Buyers)]
	a := measure.Answer{Sent: time.Now(), Buyer: i % len(cfg.Buyers)}
	orderID, ok, err := sell(ctx, db, cfg, buyer, key)
	a.Done = time.Now()
	switch {
	case ctx.Err() != nil:
		return a, fmt.Errorf("ceiling: attempt %d: %w", i, ctx.Err())
	case err != nil:
		a.Outcome, a.Code = measure.Failed, sqlState(err)
	case !ok:
		a.Outcome = measure.SoldOut
	default:
		a.Outcome, a.OrderID = measure.Ordered, strconv.FormatInt(orderID, 10)
	}
	return a, nil
}

// sell is the transaction: take one unit if any is left, insert the order.
func sell(ctx context.Context, db *sql.DB, cfg Config, buyer int64, key string) (int64, bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed or rolled back
	res, err := tx.ExecContext(ctx, takeOne, cfg.DropID)
	if err != nil {
		return 0, false, fmt.Errorf("take one unit of drop #%d: %w", cfg.DropID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, false, fmt.Errorf("rows taken: %w", err)
	}
	if n == 0 {
		return 0, false, tx.Rollback()
	}
	var id int64
	if err := tx.QueryRowContext(ctx, insertOrder, cfg.DropID, buyer, cfg.PriceCents, cfg.Currency, key, key).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("insert order of buyer #%d: %w", buyer, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("commit: %w", err)
	}
	return id, true, nil
}

// sqlState names a failure by its SQLSTATE, or "error" when PostgreSQL gave none.
func sqlState(err error) string {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return "SQLSTATE " + string(pqErr.Code)
	}
	return "error: " + err.Error()
}
