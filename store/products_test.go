package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"livedrops/domain"
	"livedrops/internal/testenv"
)

// openCatalogDB opens a migrated store on a fresh database, with a clock the
// test moves by hand.
func openCatalogDB(t *testing.T) (*DB, *time.Time) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, testenv.Database(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return clock }
	return db, &clock
}

// seedCreator inserts a user and its creator row and returns the creator id.
func seedCreator(t *testing.T, db *DB, handle string) int64 {
	t.Helper()
	ctx := context.Background()
	var userID, creatorID int64
	if err := db.GetContext(ctx, &userID, `INSERT INTO users (handle, display_name, password_hash)
		VALUES ($1, $1, 'x') RETURNING id`, handle); err != nil {
		t.Fatalf("seed user %s: %v", handle, err)
	}
	if err := db.GetContext(ctx, &creatorID, `INSERT INTO creators (user_id, display_name)
		VALUES ($1, $2) RETURNING id`, userID, handle); err != nil {
		t.Fatalf("seed creator %s: %v", handle, err)
	}
	return creatorID
}

type outboxRow struct {
	Topic   string `db:"topic"`
	Key     string `db:"key"`
	Type    string `db:"type"`
	Payload []byte `db:"payload"`
}

func outboxRows(t *testing.T, db *DB) []outboxRow {
	t.Helper()
	var rows []outboxRow
	if err := db.SelectContext(context.Background(), &rows, `SELECT topic, key, type, payload FROM outbox ORDER BY id`); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return rows
}

func TestCreateAndUpdateProduct(t *testing.T) {
	db, clock := openCatalogDB(t)
	ctx := domain.WithRequestID(domain.WithViewer(context.Background(), &domain.Viewer{UserID: 7}), "req-1")
	creatorID := seedCreator(t, db, "ada")

	p := &domain.Product{CreatorID: creatorID, Title: "Lamp", Description: "Bright", PriceCents: 4200, Currency: "EUR"}
	if err := db.CreateProduct(ctx, p); err != nil {
		t.Fatalf("CreateProduct: %v", err)
	}
	if p.ID == 0 || !p.CreatedAt.Equal(*clock) || !p.UpdatedAt.Equal(*clock) {
		t.Fatalf("CreateProduct filled %+v, want an id and both timestamps at %v", p, *clock)
	}

	*clock = clock.Add(time.Hour)
	p.Title, p.PriceCents = "Lamp II", 5000
	p.CreatorID, p.CreatedAt = 0, time.Time{} // read back from the row, never trusted from the caller
	if err := db.UpdateProduct(ctx, p); err != nil {
		t.Fatalf("UpdateProduct: %v", err)
	}
	if p.CreatorID != creatorID || !p.UpdatedAt.Equal(*clock) || !p.CreatedAt.Equal(clock.Add(-time.Hour)) {
		t.Fatalf("UpdateProduct left %+v", p)
	}
	got, err := db.ProductsByIDs(ctx, []int64{p.ID})
	if err != nil || len(got) != 1 {
		t.Fatalf("ProductsByIDs = %v, %v", got, err)
	}
	if got[0].Title != "Lamp II" || got[0].PriceCents != 5000 || got[0].Currency != "EUR" || !got[0].UpdatedAt.Equal(*clock) {
		t.Fatalf("stored product %+v does not carry the update", got[0])
	}

	err = db.UpdateProduct(ctx, &domain.Product{ID: p.ID + 1000, Title: "x", Currency: "EUR"})
	if domain.ErrorCode(err) != domain.NotFound {
		t.Fatalf("UpdateProduct of a missing product: %v, want NOT_FOUND", err)
	}

	// Each write left an audit row and a ProductUpdated event in its transaction.
	var audits []struct {
		Actor     string `db:"actor"`
		Action    string `db:"action"`
		RequestID string `db:"request_id"`
	}
	if err := db.SelectContext(ctx, &audits, `SELECT actor, action, request_id FROM audit_log WHERE entity = 'product' AND entity_id = $1 ORDER BY id`, p.ID); err != nil {
		t.Fatal(err)
	}
	if len(audits) != 2 || audits[0].Action != "product.create" || audits[1].Action != "product.update" ||
		audits[1].Actor != "user:7" || audits[1].RequestID != "req-1" {
		t.Fatalf("audit rows %+v", audits)
	}
	rows := outboxRows(t, db)
	if len(rows) != 2 {
		t.Fatalf("outbox has %d rows, want 2", len(rows))
	}
	for i, r := range rows {
		var ev domain.Event
		if err := json.Unmarshal(r.Payload, &ev); err != nil {
			t.Fatalf("outbox payload is not an envelope: %v", err)
		}
		var payload domain.ProductPayload
		if err := json.Unmarshal(ev.Payload, &payload); err != nil {
			t.Fatalf("envelope payload: %v", err)
		}
		wantKey := "product:" + strconv.FormatInt(p.ID, 10)
		if r.Topic != "livedrops.events" || r.Type != domain.EventProductUpdated || r.Key != wantKey ||
			ev.Type != r.Type || ev.Key != wantKey || uuid.Validate(ev.ID) != nil ||
			payload != (domain.ProductPayload{ProductID: p.ID, CreatorID: creatorID, Version: int64(i + 1)}) {
			t.Fatalf("outbox row %+v with envelope %+v payload %+v", r, ev, payload)
		}
	}
	if rows[0].Payload == nil || string(rows[0].Payload) == string(rows[1].Payload) {
		t.Fatal("two writes produced the same envelope")
	}
}

func TestCreateProductRollsBackWhole(t *testing.T) {
	db, _ := openCatalogDB(t)
	// No such creator: the foreign key refuses, and nothing of the write remains.
	p := &domain.Product{CreatorID: 999, Title: "Ghost", PriceCents: 1, Currency: "USD"}
	if err := db.CreateProduct(context.Background(), p); err == nil {
		t.Fatal("CreateProduct for a missing creator succeeded")
	}
	if p.ID != 0 {
		t.Fatalf("failed CreateProduct filled id %d", p.ID)
	}
	if rows := outboxRows(t, db); len(rows) != 0 {
		t.Fatalf("failed write left %d outbox rows", len(rows))
	}
}

func TestProductsByIDsIsOneStatement(t *testing.T) {
	db, _ := openCatalogDB(t)
	ctx := context.Background()
	creatorID := seedCreator(t, db, "bo")
	var ids []int64
	for i := range 30 {
		p := &domain.Product{CreatorID: creatorID, Title: fmt.Sprint("p", i), PriceCents: int64(i), Currency: "USD"}
		if err := db.CreateProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	before := db.Statements.Load()
	got, err := db.ProductsByIDs(ctx, append(ids, 424242))
	if err != nil {
		t.Fatal(err)
	}
	if n := db.Statements.Load() - before; n != 1 {
		t.Fatalf("ProductsByIDs of 31 ids sent %d statements, want 1", n)
	}
	if len(got) != 30 {
		t.Fatalf("ProductsByIDs returned %d products, want the 30 that exist", len(got))
	}
	before = db.Statements.Load()
	if got, err := db.ProductsByIDs(ctx, nil); err != nil || got != nil || db.Statements.Load() != before {
		t.Fatalf("ProductsByIDs(nil) = %v, %v and sent %d statements", got, err, db.Statements.Load()-before)
	}
}

func TestProductsByCreatorPages(t *testing.T) {
	db, clock := openCatalogDB(t)
	ctx := context.Background()
	ada, bo := seedCreator(t, db, "ada"), seedCreator(t, db, "bo")
	var titles []string
	for i := range 5 {
		// Two products share each timestamp so the id breaks the tie.
		if i%2 == 0 {
			*clock = clock.Add(time.Minute)
		}
		p := &domain.Product{CreatorID: ada, Title: fmt.Sprint("t", i), PriceCents: 1, Currency: "USD"}
		if err := db.CreateProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
		titles = append([]string{p.Title}, titles...) // newest first
	}
	if err := db.CreateProduct(ctx, &domain.Product{CreatorID: bo, Title: "other", PriceCents: 1, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}

	two := 2
	var seen []string
	var after *string
	for pageNo := 0; ; pageNo++ {
		args, err := NewPageArgs(&two, nil, after, nil)
		if err != nil {
			t.Fatal(err)
		}
		pg, err := db.ProductsByCreator(ctx, ada, args)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pg.Items {
			seen = append(seen, p.Title)
		}
		if !pg.HasNext {
			break
		}
		after = &pg.Cursors[len(pg.Cursors)-1]
		if pageNo > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(titles) {
		t.Fatalf("pages gave %v, want newest first %v", seen, titles)
	}

	// Backwards from the end: the last two, still newest first.
	args, _ := NewPageArgs(nil, &two, nil, nil)
	pg, err := db.ProductsByCreator(ctx, ada, args)
	if err != nil {
		t.Fatal(err)
	}
	if len(pg.Items) != 2 || pg.Items[0].Title != titles[3] || pg.Items[1].Title != titles[4] || !pg.HasPrev {
		t.Fatalf("last 2 = %+v (hasPrev %v), want %v", pg.Items, pg.HasPrev, titles[3:])
	}
}

func TestMedia(t *testing.T) {
	db, _ := openCatalogDB(t)
	ctx := context.Background()
	creatorID := seedCreator(t, db, "ada")
	a := &domain.Product{CreatorID: creatorID, Title: "a", PriceCents: 1, Currency: "USD"}
	b := &domain.Product{CreatorID: creatorID, Title: "b", PriceCents: 1, Currency: "USD"}
	for _, p := range []*domain.Product{a, b} {
		if err := db.CreateProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for i, pid := range []int64{a.ID, b.ID, a.ID} {
		m := &domain.Media{ProductID: pid, Key: fmt.Sprintf("products/%d/%d.png", pid, i), ContentType: "image/png", ByteSize: int64(10 + i)}
		if err := db.CreateMedia(ctx, m); err != nil {
			t.Fatalf("CreateMedia: %v", err)
		}
		if m.ID == 0 || m.CreatedAt.IsZero() {
			t.Fatalf("CreateMedia filled %+v", m)
		}
	}
	err := db.CreateMedia(ctx, &domain.Media{ProductID: 31337, Key: "x", ContentType: "image/png", ByteSize: 1})
	if domain.ErrorCode(err) != domain.NotFound {
		t.Fatalf("CreateMedia on a missing product: %v, want NOT_FOUND", err)
	}

	before := db.Statements.Load()
	got, err := db.MediaByProducts(ctx, []int64{a.ID, b.ID, 31337})
	if err != nil {
		t.Fatal(err)
	}
	if n := db.Statements.Load() - before; n != 1 {
		t.Fatalf("MediaByProducts sent %d statements, want 1", n)
	}
	if len(got[a.ID]) != 2 || len(got[b.ID]) != 1 || len(got[31337]) != 0 {
		t.Fatalf("MediaByProducts = %+v", got)
	}
	if got[a.ID][0].ByteSize != 10 || got[a.ID][1].ByteSize != 12 {
		t.Fatalf("media of a not oldest first: %+v", got[a.ID])
	}
	byID, err := db.MediaByIDs(ctx, []int64{got[b.ID][0].ID, 31337})
	if err != nil || len(byID) != 1 || byID[0] != got[b.ID][0] {
		t.Fatalf("MediaByIDs = %+v, %v; want just %+v", byID, err, got[b.ID][0])
	}
	// Each media write announces its product changed: 2 creates + 3 media.
	rows := outboxRows(t, db)
	if len(rows) != 5 || rows[4].Key != "product:"+strconv.FormatInt(a.ID, 10) {
		t.Fatalf("outbox rows %+v", rows)
	}
}

func TestInsertOutboxKeepsOrder(t *testing.T) {
	db, clock := openCatalogDB(t)
	ctx := context.Background()
	var events []domain.Event
	for i := range 3 {
		ev, err := NewEvent(domain.EventStockChanged, "drop:1", domain.StockPayload{DropID: 1, Available: 3 - i}, *clock)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	err := db.inTx(ctx, func(tx *sqlx.Tx) error { return insertOutbox(ctx, tx, "topic-a", events...) })
	if err != nil {
		t.Fatalf("insertOutbox: %v", err)
	}
	rows := outboxRows(t, db)
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	for i, r := range rows {
		var ev domain.Event
		if err := json.Unmarshal(r.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		if r.Topic != "topic-a" || ev.ID != events[i].ID || !ev.OccurredAt.Equal(*clock) {
			t.Fatalf("row %d = %+v envelope %+v, want event %+v", i, r, ev, events[i])
		}
	}
}

func TestStatementCounterKeepsDriverFeatures(t *testing.T) {
	db, _ := openCatalogDB(t)
	ctx := context.Background()

	// Isolation levels need BeginTx to reach lib/pq.
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable, ReadOnly: true})
	if err != nil {
		t.Fatalf("serializable read-only transaction: %v", err)
	}
	var level string
	before := db.Statements.Load()
	if err := tx.GetContext(ctx, &level, `SHOW transaction_isolation`); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback()
	if level != "serializable" {
		t.Fatalf("isolation %q, want serializable", level)
	}
	if n := db.Statements.Load() - before; n != 1 {
		t.Fatalf("one query counted as %d", n)
	}

	// Prepared statements count once per execution.
	st, err := db.PreparexContext(ctx, `SELECT $1::int + 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before = db.Statements.Load()
	for i := range 3 {
		var n int
		if err := st.GetContext(ctx, &n, i); err != nil || n != i+1 {
			t.Fatalf("prepared query: %d, %v", n, err)
		}
	}
	if n := db.Statements.Load() - before; n != 3 {
		t.Fatalf("3 prepared executions counted as %d", n)
	}
}
