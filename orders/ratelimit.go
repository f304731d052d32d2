package orders

import (
	"context"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"livedrops/domain"
	"livedrops/ratelimit"
)

// rateLimit caps how many orders one buyer, and one client address, may
// place per minute (GCRA in Redis, shared by every instance). When Redis
// cannot answer, orders pass: the limit protects the service, it is not
// worth refusing sales for.
type rateLimit struct {
	link    *link
	prefix  string
	buyer   redis_rate.Limit
	address redis_rate.Limit
}

func newRateLimit(l *link, prefix string, perBuyer, perAddress int) *rateLimit {
	if l == nil || (perBuyer <= 0 && perAddress <= 0) {
		return nil
	}
	return &rateLimit{link: l, prefix: prefix, buyer: redis_rate.PerMinute(perBuyer), address: redis_rate.PerMinute(perAddress)}
}

// allow returns RATE_LIMITED, with retryAfter in whole seconds, when the buyer
// or the client address of ctx is over its limit.
func (r *rateLimit) allow(ctx context.Context, buyerID int64) error {
	if r == nil {
		return nil
	}
	if err := r.take(ctx, "order:{user:"+strconv.FormatInt(buyerID, 10)+"}", r.buyer); err != nil {
		return err
	}
	if a := domain.ClientAddr(ctx); a.IsValid() {
		return r.take(ctx, "order:{addr:"+ratelimit.AddrKey(a)+"}", r.address)
	}
	return nil
}

func (r *rateLimit) take(ctx context.Context, key string, limit redis_rate.Limit) error {
	if limit.Rate <= 0 {
		return nil
	}
	var res *redis_rate.Result
	asked, err := r.link.call(ctx, "rate limit", func(ctx context.Context, rdb redis.UniversalClient) error {
		var err error
		res, err = redis_rate.NewLimiter(ratelimit.Prefixed{UniversalClient: rdb, Prefix: r.prefix}).Allow(ctx, key, limit)
		return err
	})
	if !asked || err != nil || res.Allowed > 0 {
		return nil
	}
	return ratelimit.Refusal(max(res.RetryAfter, time.Second), "too many orders")
}
