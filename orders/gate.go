package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/internal/batch"
)

// Gate timings. A Redis that cannot answer quickly is not worth waiting for:
// PostgreSQL answers without it.
const (
	// dialTimeout bounds connecting: a Redis that is down costs this, once.
	dialTimeout = 200 * time.Millisecond
	// ioTimeout bounds one command on an open connection (a hung Redis).
	ioTimeout = 500 * time.Millisecond
	// callTimeout bounds a whole call, waiting for a pooled connection included.
	callTimeout = time.Second
	// cooldown: after Redis failed, it is not asked again for this long, so an
	// outage costs one failed call per period rather than one per order.
	cooldown = time.Second
	// seenTTL is how long a buyer's idempotency key sent to PostgreSQL is remembered.
	seenTTL = 24 * time.Hour
	// counterTTL bounds a counter's life unless the reconciler renews it (every
	// pass sets every selling drop's counter): a counter it no longer sets (an
	// ended drop's, left by a race with its end) goes away on its own.
	counterTTL = 10 * time.Minute
)

// Admission is the gate's answer to one order.
type Admission int

const (
	// Bypass: the gate took nothing (no counter for the drop, or Redis is
	// cooling down); PostgreSQL decides alone.
	Bypass Admission = iota
	// Admitted: the gate took the units; give them back if the order fails.
	Admitted
	// SoldOut: not enough is left; answer without touching PostgreSQL.
	SoldOut
	// Seen: this buyer's key went to PostgreSQL before (a retry or a
	// concurrent twin); PostgreSQL returns that order, the gate took nothing.
	Seen
	// Unsure: the call failed, so the units may or may not have been taken.
	// PostgreSQL decides; if the order fails the units are given back anyway
	// (a counter too high is safe, one too low is not).
	Unsure
)

// admitScript takes ARGV[1] units from the counter KEYS[1] only if that many
// are left. Every key it sends on to PostgreSQL is remembered (KEYS[2]), so a
// retry or a concurrent twin goes to PostgreSQL for the original order, even
// once the counter says sold out. A missing counter is not "sold out": the
// order goes on. Both keys share the drop's hash tag, so a Redis Cluster runs
// the script on one node.
var admitScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 3 end
local left = redis.call('GET', KEYS[1])
if not left then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
  return 0
end
local q = tonumber(ARGV[1])
if tonumber(left) < q then return 2 end
redis.call('DECRBY', KEYS[1], q)
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
return 1
`)

// releaseScript gives ARGV[1] units back to an existing counter (a missing one
// stays missing: creating it would invent a count) and, when given, forgets
// the buyer's key KEYS[2].
var releaseScript = redis.NewScript(`
if KEYS[2] then redis.call('DEL', KEYS[2]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] and v > tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return tonumber(ARGV[2])
end
return v
`)

// link is a Redis client that fails fast, with a cooldown after a failure.
// The gate and the rate limit share one.
type link struct {
	rdb redis.UniversalClient
	log *slog.Logger
	// brokenUntil (unix nanoseconds) is when the cooldown ends; 0 when healthy.
	brokenUntil atomic.Int64
	// recovered is signalled when Redis answers again after a failure.
	recovered chan struct{}
	// failures counts failed calls.
	failures atomic.Int64
}

// newLink returns a link to the servers of rdb through a client of its own
// with short timeouts and no retries; nil when rdb is nil.
func newLink(rdb redis.UniversalClient) *link {
	if rdb == nil {
		return nil
	}
	return &link{rdb: fastClient(rdb), log: slog.Default(), recovered: make(chan struct{}, 1)}
}

// fastClient returns a client to the same servers, with the same credentials,
// as rdb, that fails fast. Options are built afresh rather than copied: a
// client's options carry state (its dialer, its push handlers) bound to it.
func fastClient(rdb redis.UniversalClient) redis.UniversalClient {
	switch c := rdb.(type) {
	case *redis.Client:
		src := c.Options()
		return redis.NewClient(&redis.Options{
			Network: src.Network, Addr: src.Addr, Username: src.Username, Password: src.Password,
			CredentialsProvider: src.CredentialsProvider, DB: src.DB, TLSConfig: src.TLSConfig,
			Protocol: src.Protocol, PoolSize: src.PoolSize,
			DialTimeout: dialTimeout, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout, PoolTimeout: callTimeout,
			MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true,
		})
	case *redis.ClusterClient:
		src := c.Options()
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: src.Addrs, Username: src.Username, Password: src.Password,
			CredentialsProvider: src.CredentialsProvider, TLSConfig: src.TLSConfig, Protocol: src.Protocol,
			PoolSize: src.PoolSize, RouteByLatency: src.RouteByLatency, RouteRandomly: src.RouteRandomly,
			DialTimeout: dialTimeout, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout, PoolTimeout: callTimeout,
			MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true,
		})
	}
	return rdb // another kind of client: used as it is, bounded by each call's context
}

// call runs fn against Redis unless the link is cooling down, bounded by
// callTimeout and not by the caller's cancellation (a give-back must not stop
// half way). asked is false when Redis was not asked; err is fn's failure.
func (l *link) call(ctx context.Context, what string, fn func(ctx context.Context, rdb redis.UniversalClient) error) (asked bool, err error) {
	if l == nil || time.Now().UnixNano() < l.brokenUntil.Load() {
		return false, nil
	}
	return l.try(ctx, what, fn)
}

// try is call without the cooldown check.
func (l *link) try(ctx context.Context, what string, fn func(ctx context.Context, rdb redis.UniversalClient) error) (asked bool, err error) {
	if l == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	err = fn(ctx, l.rdb)
	if err != nil && !errors.Is(err, redis.Nil) {
		l.failures.Add(1)
		redisErrors.WithLabelValues(what).Inc()
	}
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		if l.brokenUntil.Load() != 0 && l.brokenUntil.Swap(0) != 0 {
			l.log.Info("orders: Redis answers again")
			select {
			case l.recovered <- struct{}{}:
			default:
			}
		}
		return true, nil
	case errors.Is(err, redis.ErrPoolTimeout):
		// Every connection is busy: this instance is loaded, Redis is not down.
		return true, err
	}
	if l.brokenUntil.Swap(time.Now().Add(cooldown).UnixNano()) == 0 {
		l.log.Warn("orders: Redis unreachable, orders go to PostgreSQL alone", "during", what, "err", err)
	}
	return true, err
}

// Gate is the admission gate in Redis: a counter of each drop's available
// stock that turns away orders once it runs out, so a stampede on a sold-out
// drop never reaches PostgreSQL. It is only an optimisation: PostgreSQL's
// conditional update and CHECK constraint are the authority. A counter that
// is too high costs database work, never an oversell; one that is too low
// turns buyers away until the Reconciler sets it from PostgreSQL again, so
// wherever the gate cannot know, it errs high.
//
// A nil *Gate is valid and always bypasses.
type Gate struct {
	link   *link
	prefix string
	// admits sends the admissions asked at the same moment to Redis in one
	// pipeline: one round trip, one write and one read for many orders.
	admits *batch.Runner[struct{}, admitCall, admitReply]
}

// maxAdmitBatch bounds the admissions of one pipeline.
const maxAdmitBatch = 256

// admitCall is one admission to ask: the script's keys and the units.
type admitCall struct {
	keys []string
	q    int
}

// admitReply is the script's answer to one admission; asked is false when
// Redis was not asked (no client, or cooling down).
type admitReply struct {
	asked bool
	res   int64
	err   error
}

// NewGate returns a gate on the Redis server (or cluster) of rdb, with keys
// under prefix. The gate talks through a client of its own made from rdb's
// address and credentials with short timeouts and no retries, so an
// unreachable Redis costs an order milliseconds, not seconds. A nil rdb gives
// a gate that always bypasses.
func NewGate(rdb redis.UniversalClient, prefix string) *Gate {
	g := &Gate{link: newLink(rdb), prefix: prefix}
	g.admits = batch.New(maxAdmitBatch, func(_ struct{}, calls []admitCall) ([]admitReply, error) {
		return g.admitAll(calls), nil
	})
	return g
}

// Close releases the gate's Redis client.
func (g *Gate) Close() error {
	if g == nil || g.link == nil {
		return nil
	}
	return g.link.rdb.Close()
}

// StockKey is the Redis key of the drop's counter.
func (g *Gate) StockKey(dropID int64) string {
	return g.prefix + "stock:{drop:" + strconv.FormatInt(dropID, 10) + "}"
}

// seenKey is the Redis key remembering a buyer's idempotency key sent on to PostgreSQL.
func (g *Gate) seenKey(dropID, buyerID int64, idemKey string) string {
	h := sha256.Sum256([]byte(idemKey))
	return g.prefix + "seen:{drop:" + strconv.FormatInt(dropID, 10) + "}:" +
		strconv.FormatInt(buyerID, 10) + ":" + hex.EncodeToString(h[:12])
}

func (g *Gate) call(ctx context.Context, what string, fn func(ctx context.Context, rdb redis.UniversalClient) error) (bool, error) {
	if g == nil {
		return false, nil
	}
	return g.link.call(ctx, what, fn)
}

// Recovered is signalled when Redis answers again after a failure.
func (g *Gate) Recovered() <-chan struct{} {
	if g == nil || g.link == nil {
		return nil
	}
	return g.link.recovered
}

// Admit asks the gate for q units of the drop for the buyer's order with
// idempotency key idemKey.
func (g *Gate) Admit(ctx context.Context, dropID, buyerID int64, idemKey string, q int) Admission {
	var r admitReply
	if g != nil && g.link != nil {
		var err error
		r, err = g.admits.Do(struct{}{}, admitCall{keys: []string{g.StockKey(dropID), g.seenKey(dropID, buyerID, idemKey)}, q: q})
		if err != nil {
			r = admitReply{asked: true, err: err}
		}
	}
	a := Bypass
	switch {
	case r.err != nil:
		a = Unsure
	case !r.asked || r.res == 0:
		a = Bypass
	case r.res == 1:
		a = Admitted
	case r.res == 2:
		a = SoldOut
	case r.res == 3:
		a = Seen
	}
	gateResults.WithLabelValues(a.label()).Inc()
	return a
}

// admitAll runs the admission script for every call in one pipeline, in
// order, so calls about the same key see each other as serial calls would.
// A server that lost the script (a restart, SCRIPT FLUSH) is sent its text
// for the calls it refused, and only those: the others ran.
func (g *Gate) admitAll(calls []admitCall) []admitReply {
	ttl := int(seenTTL / time.Second)
	cmds := make([]*redis.Cmd, len(calls))
	asked, _ := g.link.call(context.Background(), "admit", func(ctx context.Context, rdb redis.UniversalClient) error {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				cmds[i] = admitScript.EvalSha(ctx, p, c.keys, c.q, ttl)
			}
			return nil
		})
		if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return err
		}
		_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
					cmds[i] = admitScript.Eval(ctx, p, c.keys, c.q, ttl)
				}
			}
			return nil
		})
		return err
	})
	out := make([]admitReply, len(calls))
	for i := range calls {
		out[i].asked = asked
		if asked {
			out[i].res, out[i].err = cmds[i].Int64()
		}
	}
	return out
}

func (a Admission) label() string {
	switch a {
	case Admitted:
		return "admitted"
	case SoldOut:
		return "sold_out"
	}
	return "bypass"
}

// Refund gives back the q units an order the gate let through may have taken
// (0 when it took none) when that order was not placed, and forgets its key,
// so a retry is judged afresh.
func (g *Gate) Refund(ctx context.Context, dropID, buyerID int64, idemKey string, q int) {
	g.giveBack(ctx, "refund", []string{g.StockKey(dropID), g.seenKey(dropID, buyerID, idemKey)}, q)
}

// SoldOut settles an order the gate let through and PostgreSQL found sold
// out: like Refund, but the counter ends at most at available, what
// PostgreSQL had left. Without the cap a counter that was too high (a
// reconcile racing a stampede) would get every unit back and never drain,
// sending each later buyer to PostgreSQL instead of answering at the gate.
func (g *Gate) SoldOut(ctx context.Context, dropID, buyerID int64, idemKey string, q, available int) {
	g.giveBack(ctx, "sold_out", []string{g.StockKey(dropID), g.seenKey(dropID, buyerID, idemKey)}, q, available)
}

// Release gives q units back to the drop's counter, if it has one: stock that
// PostgreSQL got back (a cancel, an expiry, a decline, a restock). A negative
// q takes units away (a shrink).
func (g *Gate) Release(ctx context.Context, dropID int64, q int) {
	g.giveBack(ctx, "release", []string{g.StockKey(dropID)}, q)
}

// giveBack runs releaseScript, once more if the first call failed (even
// though that failure started a cooldown): a give-back applied twice leaves
// the counter too high, which is safe, while one lost leaves it too low until
// the next reconcile. While Redis is cooling down nothing is sent; the
// reconcile that follows its recovery makes up for it.
func (g *Gate) giveBack(ctx context.Context, what string, keys []string, q int, capAt ...int) {
	args := []any{q}
	for _, c := range capAt {
		args = append(args, c)
	}
	run := func(ctx context.Context, rdb redis.UniversalClient) error {
		err := releaseScript.Run(ctx, rdb, keys, args...).Err()
		if errors.Is(err, redis.Nil) { // no counter: nothing to give back to
			return nil
		}
		return err
	}
	if asked, err := g.call(ctx, what, run); asked && err != nil {
		g.link.try(ctx, what, run)
	}
}

// Load sets the drop's counter to available, PostgreSQL's figure.
func (g *Gate) Load(ctx context.Context, dropID int64, available int) error {
	if g == nil || g.link == nil {
		return nil
	}
	return g.link.rdb.Set(ctx, g.StockKey(dropID), available, counterTTL).Err()
}

// LoadMany sets several drops' counters in one pipeline.
func (g *Gate) LoadMany(ctx context.Context, available map[int64]int) error {
	if g == nil || g.link == nil || len(available) == 0 {
		return nil
	}
	_, err := g.link.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, n := range available {
			p.Set(ctx, g.StockKey(id), n, counterTTL)
		}
		return nil
	})
	return err
}

// Forget removes the drop's counter: for a drop that has ended or was
// cancelled, PostgreSQL answers DROP_NOT_LIVE.
func (g *Gate) Forget(ctx context.Context, dropID int64) {
	g.call(ctx, "forget", func(ctx context.Context, rdb redis.UniversalClient) error {
		return rdb.Del(ctx, g.StockKey(dropID)).Err()
	})
}

// Counter returns the drop's counter and whether it exists.
func (g *Gate) Counter(ctx context.Context, dropID int64) (int, bool, error) {
	if g == nil || g.link == nil {
		return 0, false, nil
	}
	n, err := g.link.rdb.Get(ctx, g.StockKey(dropID)).Int()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return n, true, nil
}
