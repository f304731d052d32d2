package ratelimit

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/domain"
	"livedrops/internal/testenv"
)

func client(t *testing.T) (redis.UniversalClient, string) {
	t.Helper()
	url, prefix := testenv.Redis(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb, prefix
}

// retryAfter returns err's retryAfter, or 0 when err is no RATE_LIMITED.
func retryAfter(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.RateLimited {
		t.Fatalf("err = %v; want RATE_LIMITED", err)
	}
	return de.Extensions["retryAfter"].(int)
}

func TestLimiter(t *testing.T) {
	rdb, prefix := client(t)
	l := New(rdb, prefix)
	ctx := context.Background()
	r := Rate{Name: "test", Per: 3, Period: time.Minute}
	for i := range 3 {
		if err := l.Allow(ctx, r, "a", "too many"); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	if s := retryAfter(t, l.Allow(ctx, r, "a", "too many")); s < 1 || s > 20 {
		t.Fatalf("fourth request: retryAfter %d; want one request's share of a minute", s)
	}
	if err := l.Allow(ctx, r, "b", "too many"); err != nil {
		t.Fatalf("another key: %v", err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys under the prefix: %v %v", keys, err)
	}
}

func TestLockoutDoubles(t *testing.T) {
	rdb, prefix := client(t)
	l := NewLockout(rdb, prefix, Lockout{Name: "test", Free: 2, Window: time.Minute, First: 10 * time.Second, Longest: 25 * time.Second})
	ctx := context.Background()
	lift := func() {
		if err := rdb.Del(ctx, l.keys("k")[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		lift  bool
		retry int // 0: the try goes on
	}{
		{"first try", false, 0},
		{"second try (locks the next)", false, 0},
		{"locked", false, 10},
		{"after the lock (locks the next for twice as long)", true, 0},
		{"locked longer", false, 20},
		{"after it", true, 0},
		{"locked at most Longest", false, 25},
	} {
		if tc.lift {
			lift()
		}
		if got := retryAfter(t, l.Try(ctx, "k", "locked")); got != tc.retry {
			t.Fatalf("%s: retryAfter %d; want %d", tc.name, got, tc.retry)
		}
	}
	l.Clear(ctx, "k")
	if err := l.Try(ctx, "k", "locked"); err != nil {
		t.Fatalf("after Clear: %v", err)
	}
}

// Without Redis every limit lets requests through, within callTimeout.
func TestUnreachableRedisLetsThrough(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	start := time.Now()
	if err := New(rdb, "x:").Allow(ctx, Rate{Name: "test", Per: 1, Period: time.Minute}, "a", "too many"); err != nil {
		t.Fatal(err)
	}
	lock := NewLockout(rdb, "x:", Lockout{Name: "test", Free: 1, Window: time.Minute, First: time.Minute, Longest: time.Hour})
	for range 3 {
		if err := lock.Try(ctx, "k", "locked"); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 4*callTimeout+2*time.Second { // four calls
		t.Fatalf("took %s", d)
	}
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{"::ffff:203.0.113.9", "203.0.113.9"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
	} {
		if got := AddrKey(netip.MustParseAddr(tc.in)); got != tc.want {
			t.Errorf("AddrKey(%s) = %s; want %s", tc.in, got, tc.want)
		}
	}
}
