package sandbox

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/auth"
	"livedrops/config"
	"livedrops/store"
)

func TestSandboxLifecycle(t *testing.T) {
	ctx := context.Background()
	svc := ServicesFromEnv()
	s, err := New(ctx, svc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close(context.Background())
		}
	})
	if !strings.HasPrefix(s.Name, "bench_") || !strings.Contains(s.DatabaseURL, "/"+s.Name) {
		t.Fatalf("sandbox names: %+v", s)
	}

	// The environment is one the server's own configuration accepts.
	environ := map[string]string{}
	for _, kv := range s.ServerEnv("127.0.0.1:1") {
		k, v, _ := strings.Cut(kv, "=")
		environ[k] = v
	}
	cfg, err := config.Parse(environ)
	if err != nil {
		t.Fatalf("server env rejected: %v", err)
	}
	if cfg.SeedEnabled() || cfg.RedisPrefix != s.RedisPrefix || cfg.KafkaTopic != s.KafkaTopic {
		t.Errorf("config from server env = %+v", cfg)
	}

	db, err := store.Open(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatalf("open sandbox database: %v", err)
	}
	if err := db.Migrate(); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	buyers, err := s.AddBuyers(ctx, db.DB.DB, 50)
	if err != nil {
		t.Fatalf("AddBuyers: %v", err)
	}
	tokens := auth.NewTokens([]byte(s.JWTSecret), time.Hour, nil)
	seen := map[int64]bool{}
	for _, b := range buyers {
		v, err := tokens.Parse(ctx, b.Token)
		if err != nil || v.UserID != b.ID || v.Handle != b.Handle {
			t.Fatalf("token of %+v: viewer %+v, err %v", b, v, err)
		}
		seen[b.ID] = true
	}
	if len(buyers) != 50 || len(seen) != 50 {
		t.Errorf("got %d buyers, %d distinct", len(buyers), len(seen))
	}
	db.Close()

	opts, _ := redis.ParseURL(svc.RedisURL)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Set(ctx, s.RedisPrefix+"stock:{drop:1}", 5, time.Minute).Err(); err != nil {
		t.Fatalf("set Redis key: %v", err)
	}

	closed = true
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	admin, _ := sql.Open("postgres", svc.AdminDatabaseURL)
	defer admin.Close()
	var n int
	if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, s.Name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s still there after Close (count %d, err %v)", s.Name, n, err)
	}
	if keys, _ := rdb.Keys(ctx, s.RedisPrefix+"*").Result(); len(keys) != 0 {
		t.Errorf("Redis keys left after Close: %v", keys)
	}
}
