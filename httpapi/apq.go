package httpapi

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
	"github.com/vektah/gqlparser/v2/gqlerror"
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

// heldAPQ is the persisted-query store as gqlgen's extension sees it: a
// document it would store is held in the operation's stats until storeAPQ
// has seen it parse, validate and pass every limit, and one larger than
// maxBytes is never stored (it still runs). Otherwise anyone could fill Redis
// with garbage by sending it with its hash.
type heldAPQ struct {
	store    graphql.Cache[string]
	maxBytes int
}

// heldAPQKey names the held document in the operation's stats.
const heldAPQKey = "livedrops.apq.held"

type heldDocument struct{ hash, query string }

func (c heldAPQ) Get(ctx context.Context, hash string) (string, bool) { return c.store.Get(ctx, hash) }

func (c heldAPQ) Add(ctx context.Context, hash, query string) {
	if len(query) > c.maxBytes {
		return
	}
	if graphql.HasOperationContext(ctx) {
		graphql.GetOperationContext(ctx).Stats.SetExtension(heldAPQKey, heldDocument{hash: hash, query: query})
	}
}

// storeAPQ stores the document heldAPQ held, once the operation has passed
// every check before it.
type storeAPQ struct{ store graphql.Cache[string] }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = storeAPQ{}

func (storeAPQ) ExtensionName() string                   { return "StoreAPQ" }
func (storeAPQ) Validate(graphql.ExecutableSchema) error { return nil }

func (s storeAPQ) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if held, ok := opCtx.Stats.GetExtension(heldAPQKey).(heldDocument); ok {
		s.store.Add(ctx, held.hash, held.query)
	}
	return nil
}

// isSHA256Hex keeps client-chosen garbage out of Redis key names.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
