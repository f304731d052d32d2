package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/internal/testenv"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{
		{At: time.Date(2030, 5, 6, 7, 8, 9, 123456000, time.UTC), ID: 1},
		{At: time.Unix(0, 0).UTC(), ID: 0},
		{At: minCursorTime, ID: math.MaxInt64},
		{At: maxCursorTime, ID: 7},
	} {
		s := EncodeCursor(c)
		got, err := DecodeCursor("after", s)
		if err != nil {
			t.Fatalf("DecodeCursor(EncodeCursor(%v)): %v", c, err)
		}
		if !got.At.Equal(c.At) || got.ID != c.ID {
			t.Fatalf("round trip of %v gave %v", c, got)
		}
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	enc := b64
	tests := map[string]string{
		"empty":                 "",
		"too long":              strings.Repeat("A", 65),
		"not base64":            "!!!",
		"padded base64":         enc("c1|1|1") + "==",
		"no prefix":             enc("1|1"),
		"other version":         enc("c2|1|1"),
		"missing id":            enc("c1|1"),
		"empty parts":           enc("c1||"),
		"negative id":           enc("c1|1|-1"),
		"leading zero":          enc("c1|01|1"),
		"plus sign":             enc("c1|+1|1"),
		"extra part":            enc("c1|1|1|1"),
		"id overflow":           enc("c1|1|9223372036854775808"),
		"time before year 1":    enc(fmt.Sprintf("c1|%d|1", minCursorTime.UnixMicro()-1)),
		"time after year 9999":  enc(fmt.Sprintf("c1|%d|1", maxCursorTime.UnixMicro()+1)),
		"time at int64 minimum": enc(fmt.Sprintf("c1|%d|1", int64(math.MinInt64))),
		"newline inside":        enc("c1|1|1")[:4] + "\n" + enc("c1|1|1")[4:],
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeCursor("before", s)
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.BadUserInput || de.Field != "before" {
				t.Fatalf("DecodeCursor(%q) = %v; want BAD_USER_INPUT on before", s, err)
			}
		})
	}
}

// FuzzDecodeCursor checks that any client string either is refused with a
// BAD_USER_INPUT naming the field, or is exactly the encoding of a cursor
// PostgreSQL can compare against; and that NewPageArgs keeps its bounds.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(Cursor{At: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), ID: 5}), 10, -1)
	f.Add(b64("c1|-62135596800000001|1"), 0, 3)
	f.Add(b64("c1|1|1")+"\n", -1, -1)
	f.Add("", 101, 5)
	f.Fuzz(func(t *testing.T, s string, first, last int) {
		c, err := DecodeCursor("after", s)
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.BadUserInput || de.Field != "after" {
				t.Fatalf("DecodeCursor(%q) error %v is not BAD_USER_INPUT on after", s, err)
			}
		} else {
			if enc := EncodeCursor(c); enc != s {
				t.Fatalf("DecodeCursor accepted %q, which is not the canonical %q", s, enc)
			}
			if c.At.Before(minCursorTime) || c.At.After(maxCursorTime) || c.ID < 0 {
				t.Fatalf("DecodeCursor(%q) = %v, outside the keys a row can have", s, c)
			}
		}

		// Negative fuzz ints stand for an absent argument.
		opt := func(n int) *int {
			if n < 0 {
				return nil
			}
			return &n
		}
		p, err := NewPageArgs(opt(first), opt(last), &s, nil)
		if err != nil {
			if domain.ErrorCode(err) != domain.BadUserInput {
				t.Fatalf("NewPageArgs error %v is not BAD_USER_INPUT", err)
			}
			return
		}
		if p.Limit < 0 || p.Limit > MaxPageSize || p.After == nil || p.Back != (last >= 0) || (first >= 0 && last >= 0) {
			t.Fatalf("NewPageArgs(%d, %d, %q) = %+v", first, last, s, p)
		}
	})
}

func b64(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }

func TestNewPageArgs(t *testing.T) {
	n := func(i int) *int { return &i }
	s := func(v string) *string { return &v }
	good := EncodeCursor(Cursor{At: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), ID: 9})
	tests := []struct {
		name          string
		first, last   *int
		after, before *string
		wantField     string // "" = valid
		wantLimit     int
		wantBack      bool
	}{
		{"defaults", nil, nil, nil, nil, "", DefaultPageSize, false},
		{"first", n(5), nil, s(good), nil, "", 5, false},
		{"last", nil, n(7), nil, s(good), "", 7, true},
		{"zero", n(0), nil, nil, nil, "", 0, false},
		{"max", n(MaxPageSize), nil, nil, nil, "", MaxPageSize, false},
		{"both", n(1), n(1), nil, nil, "first", 0, false},
		{"first too big", n(MaxPageSize + 1), nil, nil, nil, "first", 0, false},
		{"last negative", nil, n(-1), nil, nil, "last", 0, false},
		{"bad after", n(1), nil, s("zzz"), nil, "after", 0, false},
		{"bad before", nil, n(1), nil, s("zzz"), "before", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPageArgs(tc.first, tc.last, tc.after, tc.before)
			if tc.wantField != "" {
				var de *domain.Error
				if !errors.As(err, &de) || de.Code != domain.BadUserInput || de.Field != tc.wantField {
					t.Fatalf("err = %v; want BAD_USER_INPUT on %s", err, tc.wantField)
				}
				return
			}
			if err != nil || p.Limit != tc.wantLimit || p.Back != tc.wantBack {
				t.Fatalf("NewPageArgs = %+v, %v", p, err)
			}
		})
	}
}

// TestKeysetWalk pages through a real table whose rows share timestamps, in
// both orders, forward and backward, with several page sizes: every walk sees
// every row once, in order, with pageInfo flags that match.
func TestKeysetWalk(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.MustExec(`CREATE TABLE items (id bigint PRIMARY KEY, at timestamptz NOT NULL)`)
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []Cursor
	for id := int64(1); id <= 23; id++ {
		at := base.Add(time.Duration(id%5) * time.Microsecond) // five rows per instant
		db.MustExec(`INSERT INTO items VALUES ($1, $2)`, id, at)
		all = append(all, Cursor{At: at, ID: id})
	}
	asc := slices.Clone(all)
	slices.SortFunc(asc, func(a, b Cursor) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})

	fetch := func(k keyset, p PageArgs) Page[Cursor] {
		cond, order, limit, args := k.clause(p, 1)
		var rows []Cursor
		err := db.SelectContext(ctx, &rows, fmt.Sprintf(`SELECT at AS "at", id AS "id" FROM items WHERE %s ORDER BY %s LIMIT %d`, cond, order, limit), args...)
		if err != nil {
			t.Fatalf("select %s / %s: %v", cond, order, err)
		}
		return page(rows, p, func(c Cursor) Cursor { return c })
	}
	for _, desc := range []bool{false, true} {
		want := slices.Clone(asc)
		if desc {
			slices.Reverse(want)
		}
		k := keyset{At: "at", ID: "id", Desc: desc}
		for _, size := range []int{1, 4, 5, 23, 100} {
			t.Run(fmt.Sprintf("desc=%v/size=%d", desc, size), func(t *testing.T) {
				// Forward with first/after.
				var got []Cursor
				p := PageArgs{Limit: size}
				for first := true; ; first = false {
					pg := fetch(k, p)
					if pg.HasPrev != !first {
						t.Fatalf("forward page after %v: HasPrev = %v", p.After, pg.HasPrev)
					}
					got = append(got, pg.Items...)
					if !pg.HasNext {
						break
					}
					c, err := DecodeCursor("after", pg.Cursors[len(pg.Cursors)-1])
					if err != nil {
						t.Fatal(err)
					}
					p.After = &c
				}
				assertSameKeys(t, "forward", got, want)

				// Backward with last/before.
				got = nil
				p = PageArgs{Limit: size, Back: true}
				for first := true; ; first = false {
					pg := fetch(k, p)
					if pg.HasNext != !first {
						t.Fatalf("backward page before %v: HasNext = %v", p.Before, pg.HasNext)
					}
					got = append(slices.Clone(pg.Items), got...)
					if !pg.HasPrev {
						break
					}
					c, err := DecodeCursor("before", pg.Cursors[0])
					if err != nil {
						t.Fatal(err)
					}
					p.Before = &c
				}
				assertSameKeys(t, "backward", got, want)
			})
		}
	}

	// Both bounds at once select the rows strictly between them.
	k := keyset{At: "at", ID: "id"}
	pg := fetch(k, PageArgs{Limit: 100, After: &asc[3], Before: &asc[9]})
	assertSameKeys(t, "between", pg.Items, asc[4:9])
}

func assertSameKeys(t *testing.T, walk string, got, want []Cursor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s walk saw %d rows, want %d", walk, len(got), len(want))
	}
	for i := range got {
		if !got[i].At.Equal(want[i].At) || got[i].ID != want[i].ID {
			t.Fatalf("%s walk row %d = %v, want %v", walk, i, got[i], want[i])
		}
	}
}
