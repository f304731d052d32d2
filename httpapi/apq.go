package httpapi

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

// apqTTL is how long a persisted query outlives its last use.
const apqTTL = 24 * time.Hour

var apqErrors = promauto.NewCounter(prometheus.CounterOpts{
	Name: "livedrops_apq_cache_errors_total",
	Help: "Redis failures reading or writing automatic persisted queries.",
})

// redisAPQ keeps automatic persisted queries in Redis, shared by every
// instance, so a hash registered on one is known to all.
type redisAPQ struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisAPQCache returns the persisted-query store for Options.APQCache:
// query texts under prefix+"apq:"+sha256, each kept a day after its last use.
// Redis failing is a cache miss: the client then sends the full query, so
// the API keeps working without Redis.
func NewRedisAPQCache(rdb redis.UniversalClient, prefix string) graphql.Cache[string] {
	return redisAPQ{rdb: rdb, prefix: prefix + "apq:"}
}

func (c redisAPQ) Get(ctx context.Context, hash string) (string, bool) {
	if !isSHA256Hex(hash) {
		return "", false
	}
	query, err := c.rdb.GetEx(ctx, c.prefix+hash, apqTTL).Result()
	if err != nil {
		if err != redis.Nil {
			apqErrors.Inc()
		}
		return "", false
	}
	return query, true
}

func (c redisAPQ) Add(ctx context.Context, hash, query string) {
	if err := c.rdb.Set(ctx, c.prefix+hash, query, apqTTL).Err(); err != nil {
		apqErrors.Inc()
	}
}

// isSHA256Hex keeps client-chosen garbage out of Redis key names.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
