package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/internal/testenv"
)

func apqBody(t *testing.T, query, hash string) string {
	t.Helper()
	body := map[string]any{
		"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}},
	}
	if query != "" {
		body["query"] = query
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAPQRoundTripInRedis(t *testing.T) {
	redisURL, prefix := testenv.Redis(t)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })

	e := newEnv(t, func(o *Options) { o.APQCache = NewRedisAPQCache(rdb, prefix) })
	// A second instance sharing the store knows what the first learned.
	other := newEnv(t, func(o *Options) { o.APQCache = NewRedisAPQCache(rdb, prefix) })

	query := `query Greet { hello(name: "apq") }`
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])

	for _, accept := range []string{"application/graphql-response+json", "application/json"} {
		r := e.post(apqBody(t, "", hash), "Accept", accept)
		if r.status != 200 || r.code(0) != "PERSISTED_QUERY_NOT_FOUND" || r.gql.Errors[0].Message != "PersistedQueryNotFound" {
			t.Fatalf("hash only, unknown (%s): status %d body %s", accept, r.status, r.body)
		}
	}

	r := e.post(apqBody(t, query, hash))
	if r.status != 200 || r.gql.Data["hello"] != "hello, apq" {
		t.Fatalf("hash and query: status %d body %s", r.status, r.body)
	}
	stored, err := rdb.Get(t.Context(), prefix+"apq:"+hash).Result()
	if err != nil || stored != query {
		t.Fatalf("Redis holds %q, %v", stored, err)
	}
	if ttl := rdb.TTL(t.Context(), prefix+"apq:"+hash).Val(); ttl <= 0 || ttl > 24*time.Hour {
		t.Fatalf("TTL = %v", ttl)
	}

	for _, env := range []*env{e, other} {
		r = env.post(apqBody(t, "", hash))
		if r.status != 200 || r.gql.Data["hello"] != "hello, apq" || len(r.gql.Errors) != 0 {
			t.Fatalf("hash only, known: status %d body %s", r.status, r.body)
		}
	}
	ext, _ := json.Marshal(map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}})
	r = e.get("/query", url.Values{"extensions": {string(ext)}})
	if r.status != 200 || r.gql.Data["hello"] != "hello, apq" {
		t.Fatalf("hash only over GET: status %d body %s", r.status, r.body)
	}

	r = e.post(apqBody(t, `{ hello }`, hash))
	if r.status != 400 || r.code(0) != "BAD_USER_INPUT" {
		t.Fatalf("a query that does not match its hash: status %d body %s", r.status, r.body)
	}
	r = e.post(apqBody(t, "", "not-a-hash"))
	if r.status != 200 || r.code(0) != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("a malformed hash: status %d body %s", r.status, r.body)
	}
}

func TestAPQWithoutRedisIsAMiss(t *testing.T) {
	// Nothing listens on port 1: every Redis call fails fast.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	e := newEnv(t, func(o *Options) { o.APQCache = NewRedisAPQCache(rdb, "x:") })

	query := `{ hello }`
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])
	if r := e.post(apqBody(t, "", hash)); r.code(0) != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("hash only: status %d body %s", r.status, r.body)
	}
	if r := e.post(apqBody(t, query, hash)); r.status != 200 || r.gql.Data["hello"] != "hello, world" {
		t.Fatalf("full query: status %d body %s", r.status, r.body)
	}
}
