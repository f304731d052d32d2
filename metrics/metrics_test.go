package metrics

import (
	"database/sql"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"livedrops/internal/testenv"
)

func scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape status %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestOperationLabelIsBounded(t *testing.T) {
	if got := OperationLabel(""); got != "anonymous" {
		t.Fatalf("empty name = %q", got)
	}
	first := OperationLabel("LabelTestFirst")
	for i := range MaxOperationNames + 10 {
		OperationLabel(fmt.Sprintf("LabelTest%d", i))
	}
	if got := OperationLabel("LabelTestNeverSeen"); got != "other" {
		t.Fatalf("past the cap a new name = %q, want other", got)
	}
	if got := OperationLabel("LabelTestFirst"); got != first || got != "LabelTestFirst" {
		t.Fatalf("a name seen before the cap = %q", got)
	}
}

func TestSharedMetricsAreServed(t *testing.T) {
	// The label test may have filled the name cap already; whatever label the
	// name gets is the one the histogram must carry.
	label := OperationLabel("ServedOp")
	ObserveOperation("ServedOp", "query", 12*time.Millisecond)
	CountError("SOLD_OUT")
	CountHTTPRequest("/query", 200)
	out := scrape(t)
	for _, want := range []string{
		`livedrops_graphql_duration_seconds_count{operation="` + label + `",type="query"} 1`,
		`livedrops_graphql_errors_total{code="SOLD_OUT"} 1`,
		`livedrops_http_requests_total{route="/query",status="200"} 1`,
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q in\n%s", want, grep(out, "livedrops_"))
		}
	}
}

func TestPoolStats(t *testing.T) {
	db, err := sql.Open("postgres", testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatalf("ping postgres: %v", err)
	}
	redisURL, prefix := testenv.Redis(t)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	for range 3 {
		if err := rdb.Set(t.Context(), prefix+"k", "v", time.Minute).Err(); err != nil {
			t.Fatalf("redis set: %v", err)
		}
	}

	// Registering twice replaces the first pool rather than panicking.
	RegisterDBStats(db)
	RegisterDBStats(db)
	RegisterRedisStats(rdb)
	RegisterRedisStats(rdb)

	out := scrape(t)
	for _, want := range []string{
		`go_sql_open_connections{db_name="livedrops"} 1`,
		"livedrops_redis_pool_conns 1",
		"livedrops_redis_pool_hits_total 2",
		"livedrops_redis_pool_misses_total 1",
		"livedrops_redis_pool_idle_conns 1",
		"livedrops_redis_pool_timeouts_total 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q in\n%s", want, grep(out, "livedrops_"))
		}
	}
}

// grep keeps the lines of s containing sub, for readable failures.
func grep(s, sub string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestStatementsCounter(t *testing.T) {
	var n atomic.Int64
	RegisterStatements(func() int64 { return 1 })
	RegisterStatements(n.Load) // replaces the first
	n.Store(42)
	out := scrape(t)
	if !strings.Contains(out, "# TYPE livedrops_sql_statements_total counter") || !strings.Contains(out, "livedrops_sql_statements_total 42\n") {
		t.Errorf("scrape lacks livedrops_sql_statements_total 42 in\n%s", grep(out, "livedrops_sql"))
	}
}
