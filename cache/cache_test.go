package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"livedrops/internal/testenv"
)

type item struct {
	ID   int64
	Name string
	At   time.Time
}

// counterValue reads a counter's current value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// newCache returns a cache on the test Redis under a prefix of its own.
func newCache(t *testing.T, ttl time.Duration) (*Cache, redis.UniversalClient) {
	t.Helper()
	url, prefix := testenv.Redis(t)
	rdb, err := Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return New(rdb, prefix, ttl), rdb
}

// source is a fake database table whose reads are counted.
type source struct {
	rows  map[int64]item
	calls atomic.Int32
	asked [][]int64
}

func (s *source) fill(_ context.Context, ids []int64) (map[int64]item, error) {
	s.calls.Add(1)
	s.asked = append(s.asked, slices.Sorted(slices.Values(ids)))
	out := map[int64]item{}
	for _, id := range ids {
		if r, ok := s.rows[id]; ok {
			out[id] = r
		}
	}
	return out, nil
}

func TestGetManyReadsThrough(t *testing.T) {
	c, rdb := newCache(t, time.Minute)
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	src := &source{rows: map[int64]item{1: {1, "one", at}, 2: {2, "two", at}, 3: {3, "three", at}}}
	kind := "item" + fmt.Sprint(time.Now().UnixNano()) // metrics are process-wide
	hitsBefore, missesBefore := counterValue(hits.WithLabelValues(kind)), counterValue(misses.WithLabelValues(kind))

	got, err := GetMany(ctx, c, kind, []int64{1, 2, 2, 9}, src.fill)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Name != "one" || got[2].Name != "two" {
		t.Fatalf("first read = %v", got)
	}
	if src.calls.Load() != 1 || fmt.Sprint(src.asked[0]) != "[1 2 9]" {
		t.Fatalf("fill called %d times with %v, want once with the distinct misses", src.calls.Load(), src.asked)
	}
	if ttl := rdb.TTL(ctx, c.Key(kind, 1)).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("cached value has TTL %v, want within 1m", ttl)
	}
	if n := rdb.Exists(ctx, c.Key(kind, 9)).Val(); n != 0 {
		t.Fatal("a missing id was cached; it would hide a row created later")
	}

	// Now 1 and 2 come from Redis; only 3 and 9 reach the fill.
	got, err = GetMany(ctx, c, kind, []int64{1, 2, 3, 9}, src.fill)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[1].At.Equal(at) || got[3].Name != "three" {
		t.Fatalf("second read = %v", got)
	}
	if src.calls.Load() != 2 || fmt.Sprint(src.asked[1]) != "[3 9]" {
		t.Fatalf("fill asked %v, want [3 9] second", src.asked)
	}
	if h, m := counterValue(hits.WithLabelValues(kind))-hitsBefore, counterValue(misses.WithLabelValues(kind))-missesBefore; h != 2 || m != 5 {
		t.Fatalf("counted %v hits and %v misses, want 2 and 5", h, m)
	}

	// A write evicts: the next read sees the new row, the others stay cached.
	src.rows[2] = item{2, "TWO", at}
	if err := c.Evict(ctx, kind, 2); err != nil {
		t.Fatal(err)
	}
	got, err = GetMany(ctx, c, kind, []int64{1, 2, 3}, src.fill)
	if err != nil {
		t.Fatal(err)
	}
	if got[2].Name != "TWO" || fmt.Sprint(src.asked[len(src.asked)-1]) != "[2]" {
		t.Fatalf("after evict read %v, fill asked %v", got, src.asked)
	}
}

func TestGetManyRefillsUndecodable(t *testing.T) {
	c, rdb := newCache(t, time.Minute)
	ctx := context.Background()
	src := &source{rows: map[int64]item{5: {5, "five", time.Time{}}}}
	if err := rdb.Set(ctx, c.Key("item", 5), "not json", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := GetMany(ctx, c, "item", []int64{5}, src.fill)
	if err != nil || got[5].Name != "five" || src.calls.Load() != 1 {
		t.Fatalf("read = %v, %v after %d fills", got, err, src.calls.Load())
	}
	if s := rdb.Get(ctx, c.Key("item", 5)).Val(); s == "not json" {
		t.Fatal("the undecodable value was not replaced")
	}
}

func TestGetManyPassesFillErrors(t *testing.T) {
	c, _ := newCache(t, time.Minute)
	boom := errors.New("database down")
	_, err := GetMany(context.Background(), c, "item", []int64{1}, func(context.Context, []int64) (map[int64]item, error) {
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the fill's error", err)
	}
}

func TestRedisDownFallsBackToFill(t *testing.T) {
	// Nothing listens on port 1: every Redis call fails fast.
	rdb, err := Connect("redis://127.0.0.1:1/0?dial_timeout=200ms&max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	c := New(rdb, "down:", time.Minute)
	ctx := context.Background()
	src := &source{rows: map[int64]item{1: {1, "one", time.Time{}}}}
	before := counterValue(failures.WithLabelValues("down", "read"))

	for range 2 {
		got, err := GetMany(ctx, c, "down", []int64{1, 2}, src.fill)
		if err != nil {
			t.Fatalf("GetMany with Redis down: %v", err)
		}
		if len(got) != 1 || got[1].Name != "one" {
			t.Fatalf("GetMany with Redis down = %v", got)
		}
	}
	if src.calls.Load() != 2 {
		t.Fatalf("fill called %d times, want every read", src.calls.Load())
	}
	if n := counterValue(failures.WithLabelValues("down", "read")) - before; n != 2 {
		t.Fatalf("counted %v read failures, want 2", n)
	}
	if err := c.Evict(ctx, "down", 1); err == nil {
		t.Fatal("Evict with Redis down reported success")
	}
}

func TestNilCacheIsPassThrough(t *testing.T) {
	src := &source{rows: map[int64]item{1: {1, "one", time.Time{}}}}
	var c *Cache
	got, err := GetMany(context.Background(), c, "item", []int64{1}, src.fill)
	if err != nil || got[1].Name != "one" {
		t.Fatalf("nil cache read = %v, %v", got, err)
	}
	if err := c.Evict(context.Background(), "item", 1); err != nil {
		t.Fatal(err)
	}
}

func TestConnect(t *testing.T) {
	url, _ := testenv.Redis(t)
	rdb, err := Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping %s: %v", url, err)
	}
	if _, ok := rdb.(*redis.Client); !ok {
		t.Fatalf("single-server URL gave %T", rdb)
	}

	for _, u := range []string{
		"redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002",
		"redis://:secret@127.0.0.1:7000?cluster=true",
	} {
		cl, err := Connect(u)
		if err != nil {
			t.Fatalf("Connect(%q): %v", u, err)
		}
		if _, ok := cl.(*redis.ClusterClient); !ok {
			t.Fatalf("Connect(%q) gave %T, want a cluster client", u, cl)
		}
		cl.Close()
	}
	for _, bad := range []string{"http://127.0.0.1:6379", "redis://127.0.0.1:6379?bogus=1", "::"} {
		if _, err := Connect(bad); err == nil {
			t.Fatalf("Connect(%q) accepted a bad URL", bad)
		}
	}
}
