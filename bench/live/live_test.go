package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"livedrops/bench/internal/benchtest"
	"livedrops/bench/internal/measure"
	"livedrops/domain"
	"livedrops/metrics"
	"livedrops/store"
)

func TestJudgeDelivery(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(msec int) int64 { return t0.Add(time.Duration(msec) * time.Millisecond).UnixNano() }
	commits := map[int32]commit{
		9: {Written: t0, OrderID: 1, Answered: t0.Add(4 * time.Millisecond)},
		8: {Written: t0.Add(10 * time.Millisecond), OrderID: 2},
		7: {Written: t0.Add(20 * time.Millisecond), OrderID: 3, Answered: t0.Add(25 * time.Millisecond)},
	}
	st := func(msec int, available int32, status string) dropState {
		return dropState{At: at(msec), Available: available, Reserved: 10 - available, Total: 10, Status: status}
	}
	d := judgeDelivery([][]dropState{
		// The snapshot is not timed; 9 then 7 (8 conflated away).
		{st(-50, 10, "LIVE"), st(30, 9, "LIVE"), st(60, 7, "LIVE")},
		// A status-only change repeats the stock: delivered, not timed.
		{st(-40, 10, "LIVE"), st(12, 8, "LIVE"), st(13, 8, "SOLD_OUT")},
		// Stock that moves back, and a state no commit made.
		{st(-30, 9, "LIVE"), st(40, 10, "LIVE"), st(41, 6, "LIVE")},
		{},
	}, commits)
	if d.Updates != 6 {
		t.Errorf("Updates = %d, want 6", d.Updates)
	}
	wantCommit := []time.Duration{30 * time.Millisecond, 40 * time.Millisecond, 2 * time.Millisecond}
	if fmt.Sprint(d.FromCommit) != fmt.Sprint(wantCommit) {
		t.Errorf("FromCommit = %v, want %v", d.FromCommit, wantCommit)
	}
	wantAnswer := []time.Duration{26 * time.Millisecond, 35 * time.Millisecond}
	if fmt.Sprint(d.FromAnswer) != fmt.Sprint(wantAnswer) {
		t.Errorf("FromAnswer = %v, want %v", d.FromAnswer, wantAnswer)
	}
	if d.MovedBack != 1 || d.Unmatched != 1 {
		t.Errorf("MovedBack, Unmatched = %d, %d; want 1, 1", d.MovedBack, d.Unmatched)
	}
}

func TestCountStale(t *testing.T) {
	final := dropState{Available: 0, Reserved: 5, Total: 5, Status: "SOLD_OUT"}
	same := final
	same.At = 99 // when it arrived does not matter
	live := final
	live.Status = "LIVE"
	behind := final
	behind.Available, behind.Reserved = 1, 4
	if n := countStale([]*dropState{&same, &live, &behind, nil, &final}, final); n != 3 {
		t.Errorf("countStale = %d, want 3 (wrong status, older stock, nothing received)", n)
	}
}

func TestAddAnswers(t *testing.T) {
	t0 := time.Now()
	commits := map[int32]commit{4: {OrderID: 7}, 3: {OrderID: 8}, 2: {}}
	addAnswers(commits, []measure.Answer{
		{Outcome: measure.Ordered, OrderID: domain.GlobalID(domain.TypeOrder, 7), Done: t0.Add(time.Second)},
		{Outcome: measure.Ordered, OrderID: domain.GlobalID(domain.TypeOrder, 7), Done: t0}, // earlier retry wins
		{Outcome: measure.SoldOut, Done: t0},
		{Outcome: measure.Ordered, OrderID: "not an id", Done: t0},
	})
	if !commits[4].Answered.Equal(t0) {
		t.Errorf("order 7 answered at %v, want its first answer %v", commits[4].Answered, t0)
	}
	if !commits[3].Answered.IsZero() || !commits[2].Answered.IsZero() {
		t.Errorf("commits without an answer got one: %+v", commits)
	}
}

func TestLastLineFormat(t *testing.T) {
	got := lastLine(5000, 12.4, 80.6, 0, 23.5)
	want := "live: subscribers=5000 p50_ms=12 p99_ms=81 stale=0 kib_per_subscriber=24"
	if got != want {
		t.Errorf("lastLine = %q, want %q", got, want)
	}
	re := regexp.MustCompile(`^live: subscribers=\d+ p50_ms=\d+ p99_ms=\d+ stale=\d+ kib_per_subscriber=-?\d+$`)
	if !re.MatchString(got) {
		t.Errorf("lastLine %q does not parse", got)
	}
}

func TestVmRSS(t *testing.T) {
	status := []byte("Name:\tlivedrops\nVmPeak:\t  999 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n")
	if got, err := vmRSS(status); err != nil || got != 51200*1024 {
		t.Errorf("vmRSS = %d, %v; want %d", got, err, 51200*1024)
	}
	if _, err := vmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("vmRSS without a VmRSS line succeeded")
	}
}

func TestPromGauges(t *testing.T) {
	text := []byte(`# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.2345e+07
go_memstats_heap_inuse_bytes_total 1
go_memstats_stack_inuse_bytes 65536 1700000000000
livedrops_live_subscribers{kind="drop"} 5000
livedrops_live_subscribers{kind="user"} 2
`)
	got := promGauges(text, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes",
		`livedrops_live_subscribers{kind="drop"}`, "missing")
	want := []float64{12345000, 65536, 5000, 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("promGauges = %v, want %v", got, want)
	}
}

// readCommits pairs each stock state with the order that made it, on the
// outbox the real store writes, orders placed concurrently.
func TestReadCommits(t *testing.T) {
	_, db := benchtest.Database(t)
	const stock = 12
	dropID := benchtest.LiveDrop(t, db, "commits_seller", stock)
	buyers := benchtest.Buyers(t, db.DB.DB, stock+3)
	ctx := context.Background()

	orderOf := make([]int64, len(buyers)) // buyer index -> order id (0: sold out)
	var wg sync.WaitGroup
	for i, buyer := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := db.PlaceOrder(ctx, store.NewOrder{DropID: dropID, BuyerID: buyer, Quantity: 1,
				IdempotencyKey: "k", RequestHash: "h", TTL: time.Hour}, func(store.OrderSale) error { return nil })
			switch {
			case err == nil:
				orderOf[i] = p.Order.ID
			case domain.ErrorCode(err) != domain.SoldOut:
				t.Errorf("place order of buyer %d: %v", buyer, err)
			}
		}()
	}
	wg.Wait()

	commits, err := readCommits(ctx, db.DB.DB, dropID)
	if err != nil {
		t.Fatalf("readCommits: %v", err)
	}
	if len(commits) != stock {
		t.Fatalf("%d commits, want one per unit (%d): %+v", len(commits), stock, commits)
	}
	placed := map[int64]bool{}
	for _, id := range orderOf {
		if id != 0 {
			placed[id] = true
		}
	}
	seen := map[int64]bool{}
	for available := range int32(stock) {
		c, ok := commits[available]
		if !ok {
			t.Fatalf("no commit left %d available", available)
		}
		if !placed[c.OrderID] || seen[c.OrderID] {
			t.Errorf("the state with %d available is paired with order %d, not one placed order of its own", available, c.OrderID)
		}
		seen[c.OrderID] = true
		var created time.Time
		if err := db.QueryRowContext(ctx, `SELECT created_at FROM orders WHERE id = $1`, c.OrderID).Scan(&created); err != nil {
			t.Fatalf("read order %d: %v", c.OrderID, err)
		}
		// The order is stamped at the transaction's start, its events at their
		// insert a little later, by two clocks of one machine.
		if d := c.Written.Sub(created); d < -time.Second || d > time.Second {
			t.Errorf("order %d created at %v, its stock event at %v", c.OrderID, created, c.Written)
		}
	}
	// Stock moved by anything else breaks the pairing, and says so.
	if _, _, err := db.AdjustStock(ctx, dropID, 1, 1000, 0); err != nil {
		t.Fatalf("restock: %v", err)
	}
	if _, err := readCommits(ctx, db.DB.DB, dropID); err == nil {
		t.Error("readCommits accepted two events leaving the same stock")
	}
}

func TestCPUReadings(t *testing.T) {
	before := readCPU(os.Getpid())
	deadline := time.Now().Add(200 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ { // burn CPU so there is something to read
		_ = x * x
	}
	c, err := readCPU(os.Getpid()).since(before)
	if err != nil {
		t.Fatalf("since: %v", err)
	}
	if c.Server <= 0.2 || c.Self <= 0.2 || c.Machine < c.Self*0.5 {
		t.Errorf("cores while spinning one goroutine = %+v: want this process busy and counted", c)
	}
	if _, err := readCPU(1 << 30).since(before); err == nil {
		t.Error("since with an unreadable server succeeded")
	}
}

// collectGarbage, pointed at this test process's own metrics, ends once a
// collection has run, and readMemory then reads the Go figures.
func TestCollectGarbageAndReadMemory(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler())
	mux.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // as the server does: the whole body, then refused
		http.Error(w, "too many tokens in "+strconv.Itoa(len(body))+" bytes", http.StatusBadRequest)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	before := debugGCCount()
	if err := collectGarbage(ctx, srv.URL, srv.URL); err != nil {
		t.Fatalf("collectGarbage: %v", err)
	}
	if debugGCCount() <= before {
		t.Error("collectGarbage returned before a collection ran")
	}
	m, err := readMemory(ctx, os.Getpid(), srv.URL, srv.URL)
	if err != nil {
		t.Fatalf("readMemory: %v", err)
	}
	if m.RSS <= 0 || m.HeapAlloc <= 0 || m.HeapInuse < m.HeapAlloc || m.StackInuse <= 0 || m.Goroutines < 2 {
		t.Errorf("readMemory = %+v", m)
	}
}

func debugGCCount() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}
