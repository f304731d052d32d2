package accounts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/auth"
	"livedrops/config"
	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/store/storetest"
)

func TestLogInLimitsKeepRedisKeysSmall(t *testing.T) {
	url, prefix := testenv.Redis(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	cfg, err := config.Parse(map[string]string{"APP_ENV": "dev"})
	if err != nil {
		t.Fatal(err)
	}
	s := New(storetest.Open(t), auth.NewTokens([]byte("accounts-test-secret"), time.Hour, nil), nil, NewLimits(rdb, prefix, cfg.Abuse))
	ctx := context.Background()

	for range cfg.LogInFailuresPerHandle + 1 {
		_, err := s.LogIn(ctx, strings.Repeat("h", 100_000), "long enough password")
		wantError(t, err, domain.Unauthenticated, "", "wrong handle or password")
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if len(k) > 200 {
			t.Errorf("key of %d bytes written for a handle no account can have", len(k))
		}
	}
}
