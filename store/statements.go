package store

import (
	"context"
	"database/sql/driver"
)

// countingConnector wraps the lib/pq connector so every statement sent to
// PostgreSQL is counted in DB.Statements: tests prove with it that a read is
// batched, without a proxy or server-side statistics.
type countingConnector struct {
	driver.Connector
	db *DB
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{conn: conn, db: c.db}, nil
}

// countingConn forwards every driver interface lib/pq's connection has, so
// database/sql keeps its fast paths (QueryContext, BeginTx with options, …).
type countingConn struct {
	conn driver.Conn
	db   *DB
}

// Unwrap returns the lib/pq connection, for the rare pq function that needs it
// (pq.SetNotificationHandler inside sql.Conn.Raw).
func (c *countingConn) Unwrap() driver.Conn { return c.conn }

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var (
		st  driver.Stmt
		err error
	)
	if p, ok := c.conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = c.conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{stmt: st, db: c.db}, nil
}

func (c *countingConn) Close() error { return c.conn.Close() }

// Begin is required by driver.Conn; database/sql calls BeginTx.
func (c *countingConn) Begin() (driver.Tx, error) { return c.conn.Begin() }

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return c.conn.Begin()
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := q.QueryContext(ctx, query, args)
	if err != driver.ErrSkip {
		c.db.counted()
	}
	return rows, err
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := e.ExecContext(ctx, query, args)
	if err != driver.ErrSkip {
		c.db.counted()
	}
	return res, err
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// countingStmt counts each execution of a prepared statement.
type countingStmt struct {
	stmt driver.Stmt
	db   *DB
}

func (s *countingStmt) Close() error  { return s.stmt.Close() }
func (s *countingStmt) NumInput() int { return s.stmt.NumInput() }

func (s *countingStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.db.counted()
	return s.stmt.Exec(args)
}

func (s *countingStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.db.counted()
	return s.stmt.Query(args)
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := s.stmt.(driver.StmtExecContext); ok {
		s.db.counted()
		return e.ExecContext(ctx, args)
	}
	values, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	return s.Exec(values)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := s.stmt.(driver.StmtQueryContext); ok {
		s.db.counted()
		return q.QueryContext(ctx, args)
	}
	values, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	return s.Query(values)
}

// namedToValues serves statements that only take positional values (pq's COPY).
func namedToValues(named []driver.NamedValue) ([]driver.Value, error) {
	values := make([]driver.Value, len(named))
	for i, nv := range named {
		if nv.Name != "" {
			return nil, driver.ErrSkip
		}
		values[i] = nv.Value
	}
	return values, nil
}
