package store

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"livedrops/domain"
)

// Page bounds: a connection returns DefaultPageSize items unless asked, and
// never more than MaxPageSize.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Cursor is the keyset position of one item: its sort time and its id. A
// cursor carries only the key, never filters.
type Cursor struct {
	At time.Time
	ID int64
}

const cursorPrefix = "c1|"

// A cursor's time lies within years 1..9999: every row's does, and a time
// outside what PostgreSQL accepts would fail the query instead of the input.
var (
	minCursorTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxCursorTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// EncodeCursor returns the opaque string form of c.
func EncodeCursor(c Cursor) string {
	raw := cursorPrefix + strconv.FormatInt(c.At.UnixMicro(), 10) + "|" + strconv.FormatInt(c.ID, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor parses a cursor made by EncodeCursor; anything else is a
// BAD_USER_INPUT error naming field.
func DecodeCursor(field, s string) (Cursor, error) {
	bad := domain.InvalidInput(field, "%s is not a valid cursor", field)
	if len(s) == 0 || len(s) > 64 {
		return Cursor{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	rest, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return Cursor{}, bad
	}
	atStr, idStr, ok := strings.Cut(rest, "|")
	if !ok {
		return Cursor{}, bad
	}
	at, err1 := strconv.ParseInt(atStr, 10, 64)
	id, err2 := strconv.ParseInt(idStr, 10, 64)
	if err1 != nil || err2 != nil || id < 0 {
		return Cursor{}, bad
	}
	c := Cursor{At: time.UnixMicro(at).UTC(), ID: id}
	if c.At.Before(minCursorTime) || c.At.After(maxCursorTime) {
		return Cursor{}, bad
	}
	// Only the exact encoding is a cursor: base64 decoding forgives line
	// breaks and stray bits, and numbers may carry signs or leading zeros.
	if EncodeCursor(c) != s {
		return Cursor{}, bad
	}
	return c, nil
}

// PageArgs are a Relay connection's arguments, checked: at most one of First
// and Last, each within 0..MaxPageSize, cursors decoded.
type PageArgs struct {
	Limit  int
	Back   bool // last/before: the page ends at Before and is counted backwards
	After  *Cursor
	Before *Cursor
}

// NewPageArgs validates a connection's arguments as a client gave them.
func NewPageArgs(first, last *int, after, before *string) (PageArgs, error) {
	if first != nil && last != nil {
		return PageArgs{}, domain.InvalidInput("first", "give first or last, not both")
	}
	p := PageArgs{Limit: DefaultPageSize}
	for name, n := range map[string]*int{"first": first, "last": last} {
		if n == nil {
			continue
		}
		if *n < 0 || *n > MaxPageSize {
			return PageArgs{}, domain.InvalidInput(name, "%s must be between 0 and %d", name, MaxPageSize)
		}
		p.Limit = *n
	}
	p.Back = last != nil
	if after != nil {
		c, err := DecodeCursor("after", *after)
		if err != nil {
			return PageArgs{}, err
		}
		p.After = &c
	}
	if before != nil {
		c, err := DecodeCursor("before", *before)
		if err != nil {
			return PageArgs{}, err
		}
		p.Before = &c
	}
	return p, nil
}

// Page is one page of a connection.
type Page[T any] struct {
	Items   []T
	Cursors []string
	HasNext bool
	HasPrev bool
}

// keyset describes the sort key of a list: a time column and an id column,
// read in ascending order of (At, ID), or descending when Desc.
type keyset struct {
	At, ID string
	Desc   bool
}

// clause returns the SQL condition, ORDER BY and LIMIT for p, with its
// parameters numbered from next. The condition is "TRUE" when p has no cursor.
func (k keyset) clause(p PageArgs, next int) (cond, order string, limit int, args []any) {
	// Reading forward in the natural order or backwards from Before.
	backward := p.Back
	conds := []string{}
	cmp := func(c *Cursor, greater bool) {
		op := "<"
		if greater != k.Desc {
			op = ">"
		}
		conds = append(conds, fmt.Sprintf("(%s, %s) %s ($%d, $%d)", k.At, k.ID, op, next, next+1))
		args = append(args, c.At, c.ID)
		next += 2
	}
	if p.After != nil {
		cmp(p.After, true)
	}
	if p.Before != nil {
		cmp(p.Before, false)
	}
	cond = "TRUE"
	if len(conds) > 0 {
		cond = strings.Join(conds, " AND ")
	}
	dir := "ASC"
	if k.Desc != backward {
		dir = "DESC"
	}
	order = fmt.Sprintf("%s %s, %s %s", k.At, dir, k.ID, dir)
	return cond, order, p.Limit + 1, args
}

// page trims rows fetched with clause's limit (one extra) to a Page in the
// natural order, with cursors and pageInfo flags.
func page[T any](rows []T, p PageArgs, key func(T) Cursor) Page[T] {
	more := len(rows) > p.Limit
	if more {
		rows = rows[:p.Limit]
	}
	if p.Back {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	pg := Page[T]{Items: rows, Cursors: make([]string, len(rows))}
	for i, r := range rows {
		pg.Cursors[i] = EncodeCursor(key(r))
	}
	if p.Back {
		pg.HasPrev = more
		pg.HasNext = p.Before != nil
	} else {
		pg.HasNext = more
		pg.HasPrev = p.After != nil
	}
	return pg
}

// lateral returns one keyset page of sel's rows as a subquery of pagesOf's
// lateral join: sel is a SELECT … WHERE whose condition names parent.id, the
// parent whose page it reads; p's parameters are numbered from next.
func (k keyset) lateral(sel string, p PageArgs, next int) (string, []any) {
	cond, order, limit, args := k.clause(p, next)
	return fmt.Sprintf("(%s AND %s ORDER BY %s LIMIT %d)", sel, cond, order, limit), args
}

// pagesOf reads the page p of every parent's list in one statement: body is
// the lateral subquery (one keyset.lateral, or several joined by UNION ALL)
// with its parameters args numbered from $2; $1 is the parents' ids. parent
// says whose a row is; key is its cursor, in the order of k. Every parent gets
// a page, an empty one when it has no rows.
func pagesOf[R any](ctx context.Context, db *DB, parents []int64, body string, args []any, k keyset, p PageArgs,
	parent func(R) int64, key func(R) Cursor, attempt string) (map[int64]Page[R], error) {
	ids := slices.Clone(parents)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[int64]Page[R], len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []R
	q := `SELECT x.* FROM unnest($1::bigint[]) AS parent(id) CROSS JOIN LATERAL (` + body + `) AS x`
	if err := db.SelectContext(ctx, &rows, q, append([]any{pq.Array(ids)}, args...)...); err != nil {
		return nil, mapError(err, "%s of %d parents", attempt, len(ids))
	}
	lists := make(map[int64][]R, len(ids))
	for _, r := range rows {
		lists[parent(r)] = append(lists[parent(r)], r)
	}
	// The order each page was read in: a join promises none across its rows.
	sign := 1
	if k.Desc != p.Back {
		sign = -1
	}
	for _, id := range ids {
		list := lists[id]
		slices.SortFunc(list, func(a, b R) int { return sign * compareCursors(key(a), key(b)) })
		// Of several runs, the page is the first Limit+1 rows of them all.
		if len(list) > p.Limit+1 {
			list = list[:p.Limit+1]
		}
		out[id] = page(list, p, key)
	}
	return out, nil
}

// compareCursors orders cursors by time, then id.
func compareCursors(a, b Cursor) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}
