package orders

import (
	"context"
	"math"
	"strconv"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"livedrops/domain"
)

// rateLimit caps how many orders one buyer may place per minute (GCRA in
// Redis, shared by every instance). When Redis cannot answer, orders pass:
// the limit protects the service, it is not worth refusing sales for.
type rateLimit struct {
	link   *link
	prefix string
	limit  redis_rate.Limit
}

func newRateLimit(l *link, prefix string, perMinute int) *rateLimit {
	if l == nil || perMinute <= 0 {
		return nil
	}
	return &rateLimit{link: l, prefix: prefix, limit: redis_rate.PerMinute(perMinute)}
}

// allow returns RATE_LIMITED, with retryAfter in whole seconds, when the buyer
// is over the limit.
func (r *rateLimit) allow(ctx context.Context, buyerID int64) error {
	if r == nil {
		return nil
	}
	var res *redis_rate.Result
	asked, err := r.link.call(ctx, "rate limit", func(ctx context.Context, rdb redis.UniversalClient) error {
		var err error
		res, err = redis_rate.NewLimiter(prefixed{rdb, r.prefix}).Allow(ctx, "order:{user:"+strconv.FormatInt(buyerID, 10)+"}", r.limit)
		return err
	})
	if !asked || err != nil || res.Allowed > 0 {
		return nil
	}
	retry := int(math.Ceil(res.RetryAfter.Seconds()))
	if retry < 1 {
		retry = 1
	}
	return &domain.Error{
		Code:       domain.RateLimited,
		Message:    "too many orders; try again in " + strconv.Itoa(retry) + "s",
		Extensions: map[string]any{"retryAfter": retry},
	}
}

// prefixed puts the configured key prefix in front of the keys redis_rate
// uses (it names them "rate:…" itself), so every key stays under the prefix.
type prefixed struct {
	redis.UniversalClient
	prefix string
}

func (p prefixed) keys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = p.prefix + k
	}
	return out
}

func (p prefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.Eval(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalSha(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalRO(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalShaRO(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return p.UniversalClient.Del(ctx, p.keys(keys)...)
}
