// Package ratelimit holds the limits that keep one client from costing the
// service more than its share: rates (GCRA in Redis, through redis_rate) and
// lockouts that double after repeated failures. Every instance shares them
// through Redis; when Redis cannot answer, they let the request pass.
package ratelimit

import (
	"context"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"livedrops/domain"
)

// callTimeout bounds one limit's Redis call: a hung Redis must not hold up
// the request it guards.
const callTimeout = 300 * time.Millisecond

var redisErrors = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "livedrops_ratelimit_redis_errors_total",
	Help: "Limits let through because Redis did not answer, by limit.",
}, []string{"limit"})

var refusals = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "livedrops_ratelimit_refused_total",
	Help: "Requests refused RATE_LIMITED, by limit.",
}, []string{"limit"})

// Refusal is the RATE_LIMITED error a client sees: what it may not do yet and,
// in extensions.retryAfter, after how many whole seconds it may.
func Refusal(retryAfter time.Duration, what string) *domain.Error {
	retry := max(1, int(math.Ceil(retryAfter.Seconds())))
	return &domain.Error{
		Code:       domain.RateLimited,
		Message:    what + "; try again in " + strconv.Itoa(retry) + "s",
		Extensions: map[string]any{"retryAfter": retry},
	}
}

// AddrKey names a client address in keys: IPv4 addresses whole, IPv6 ones by
// their /64, which one subscriber usually holds entirely.
func AddrKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Rate is one named rate limit: Per requests every Period, in a burst of up
// to Per.
type Rate struct {
	Name   string // the metric label, and the start of every key
	Per    int
	Period time.Duration
}

// Limiter answers rate limits from Redis.
type Limiter struct {
	l *redis_rate.Limiter
}

// New returns a limiter whose keys live under prefix; nil rdb is no limit.
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	if rdb == nil {
		return nil
	}
	return &Limiter{l: redis_rate.NewLimiter(Prefixed{rdb, prefix})}
}

// Allow takes one request from key's allowance of r, or returns RATE_LIMITED
// (saying it is what) when none is left. Redis failing lets it pass.
func (l *Limiter) Allow(ctx context.Context, r Rate, key, what string) error {
	if l == nil || r.Per <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	res, err := l.l.Allow(ctx, r.Name+":{"+key+"}", redis_rate.Limit{Rate: r.Per, Burst: r.Per, Period: r.Period})
	if err != nil {
		redisErrors.WithLabelValues(r.Name).Inc()
		return nil
	}
	if res.Allowed > 0 {
		return nil
	}
	refusals.WithLabelValues(r.Name).Inc()
	return Refusal(res.RetryAfter, what)
}

// Lockout refuses a key for a while once it has been tried Free times
// without a success, tries no more than Window apart: the first lock lasts
// First and each try after it doubles the lock, up to Longest. A try is
// counted before it runs, so tries at the same moment cannot slip past the
// count; a success clears it.
type Lockout struct {
	Name    string
	Free    int
	Window  time.Duration
	First   time.Duration
	Longest time.Duration

	rdb    redis.UniversalClient
	prefix string
}

// NewLockout returns l keeping its counts in rdb under prefix; nil rdb never
// locks.
func NewLockout(rdb redis.UniversalClient, prefix string, l Lockout) *Lockout {
	if rdb == nil {
		return nil
	}
	l.rdb, l.prefix = rdb, prefix
	return &l
}

func (l *Lockout) keys(key string) []string {
	base := l.prefix + l.Name + ":{" + key + "}"
	return []string{base + ":tries", base + ":lock"}
}

// tryScript answers the ms left of a lock, or counts a try and, from the
// Free-th on, locks the next ones for First·2^(tries-Free) ms, at most
// Longest; the count outlives the lock by Window so the next try doubles it.
var tryScript = redis.NewScript(`
local left = redis.call('PTTL', KEYS[2])
if left > 0 then return left end
local n = redis.call('INCR', KEYS[1])
local over = n - tonumber(ARGV[1])
local lock = 0
if over >= 0 then
  lock = math.floor(math.min(tonumber(ARGV[3]) * math.pow(2, math.min(over, 40)), tonumber(ARGV[4])))
  redis.call('SET', KEYS[2], '1', 'PX', lock)
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + lock)
return 0
`)

// Try counts a try of key, or returns RATE_LIMITED (saying it is what) while
// key is locked.
func (l *Lockout) Try(ctx context.Context, key, what string) error {
	if l == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	left, err := tryScript.Run(ctx, l.rdb, l.keys(key), l.Free, l.Window.Milliseconds(), l.First.Milliseconds(), l.Longest.Milliseconds()).Int64()
	if err != nil {
		redisErrors.WithLabelValues(l.Name).Inc()
		return nil
	}
	if left <= 0 {
		return nil
	}
	refusals.WithLabelValues(l.Name).Inc()
	return Refusal(time.Duration(left)*time.Millisecond, what)
}

// Clear forgets key's tries and lifts its lock.
func (l *Lockout) Clear(ctx context.Context, key string) {
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	if err := l.rdb.Del(ctx, l.keys(key)...).Err(); err != nil {
		redisErrors.WithLabelValues(l.Name).Inc()
	}
}

// Prefixed puts a key prefix in front of the keys redis_rate uses (it names
// them "rate:…" itself), so every key stays under the configured prefix.
type Prefixed struct {
	redis.UniversalClient
	Prefix string
}

func (p Prefixed) keys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = p.Prefix + k
	}
	return out
}

func (p Prefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.Eval(ctx, script, p.keys(keys), args...)
}

func (p Prefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalSha(ctx, sha1, p.keys(keys), args...)
}

func (p Prefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalRO(ctx, script, p.keys(keys), args...)
}

func (p Prefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalShaRO(ctx, sha1, p.keys(keys), args...)
}

func (p Prefixed) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return p.UniversalClient.Del(ctx, p.keys(keys)...)
}
