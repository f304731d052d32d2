package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/internal/batch"
	"livedrops/store"
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
	// DefaultRetention bounds a counter's life unless the reconciler renews
	// it (every pass sets every selling drop's counter): a counter it no
	// longer sets (an ended drop's, left by a race with its end) goes away on
	// its own. Gate.Retention changes it.
	DefaultRetention = 10 * time.Minute
	// keysOutlive is how much longer a drop's known keys live than its
	// counter, so a counter never outlives the keys it vouches for.
	keysOutlive = time.Minute
	// missingEvery is how often one drop's missing counter is reported to the
	// reconciler, at most.
	missingEvery = time.Second
	// maxUnremembered bounds the keys of orders placed while Redis could not
	// be told, kept until it can.
	maxUnremembered = 65536
)

// Admission is the gate's answer to one order.
type Admission int

const (
	// Bypass: the drop has no counter; the gate took nothing but remembered
	// the key, and PostgreSQL decides alone.
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
	// Blind: Redis was not asked (no Redis, or cooling down after a failure);
	// PostgreSQL decides alone and the gate does not know the key.
	Blind
)

// admitScript takes ARGV[1] units from the counter KEYS[1] only if that many
// are left. Every key it sends on to PostgreSQL is remembered as field
// ARGV[2] of the drop's known keys KEYS[2], so a retry or a concurrent twin
// goes to PostgreSQL for the original order, even once the counter says sold
// out. A missing counter is not "sold out": the order goes on. A counter
// exists only while the known keys hold every key PostgreSQL has for the
// drop (see Restore), so its SOLD_OUT is never the answer to a key that holds
// an order. Both keys share the drop's hash tag, so a Redis Cluster runs the
// script on one node.
var admitScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 3 end
local left = redis.call('GET', KEYS[1])
local q = tonumber(ARGV[1])
if left and tonumber(left) < q then return 2 end
if left then redis.call('DECRBY', KEYS[1], q) end
redis.call('HSET', KEYS[2], ARGV[2], '1')
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
if left then return 1 end
return 0
`)

// rememberScript adds the fields ARGV[2..] to the drop's known keys KEYS[1],
// giving them a lifetime of ARGV[1] seconds if they have none.
var rememberScript = redis.NewScript(`
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], '1') end
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return #ARGV - 1
`)

// releaseScript gives ARGV[1] units back to an existing counter KEYS[1] (a
// missing one stays missing: creating it would invent a count), capped at
// ARGV[2] unless it is negative, and, when ARGV[3] is given, forgets that
// buyer's key from the known keys KEYS[2].
var releaseScript = redis.NewScript(`
if ARGV[3] then redis.call('HDEL', KEYS[2], ARGV[3]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
local cap = tonumber(ARGV[2])
if cap >= 0 and v > cap then
  redis.call('SET', KEYS[1], cap, 'KEEPTTL')
  return cap
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
// wherever the gate cannot know, it errs high. Beside each counter the gate
// keeps the drop's known keys, and a counter exists only while they hold
// every key PostgreSQL has (Restore): a key that holds an order always goes
// on to PostgreSQL for it, whatever Redis has forgotten.
//
// A nil *Gate is valid and always bypasses.
type Gate struct {
	// Retention is how long a drop's counter lives after its last renewal
	// (its known keys a minute longer); 0 is DefaultRetention. Keep it well
	// above the reconciler's Interval. Set before use.
	Retention time.Duration

	link   *link
	prefix string
	// admits sends the admissions asked at the same moment to Redis in one
	// pipeline: one round trip, one write and one read for many orders.
	admits *batch.Runner[struct{}, admitCall, admitReply]
	// missing carries drops found without a counter to the reconciler;
	// missingAt (drop → unix nanoseconds) spaces the reports of one drop.
	missing   chan int64
	missingAt sync.Map
	// unremembered holds keys of orders placed while Redis could not be told
	// (drop → known-keys fields), until it can; overflowed is set when some
	// had to be dropped, so every drop's keys must be restored.
	mu           sync.Mutex
	unremembered map[int64][]string
	held         int
	overflowed   bool
}

// counterTTL is the lifetime a counter gets at each renewal.
func (g *Gate) counterTTL() time.Duration {
	if g.Retention > 0 {
		return g.Retention
	}
	return DefaultRetention
}

// keysTTL is the lifetime a drop's known keys get at each renewal.
func (g *Gate) keysTTL() time.Duration { return g.counterTTL() + keysOutlive }

// maxAdmitBatch bounds the admissions of one pipeline.
const maxAdmitBatch = 256

// admitCall is one admission to ask: the script's keys, the buyer's key's
// field and the units.
type admitCall struct {
	keys  []string
	field string
	q     int
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
	g := &Gate{link: newLink(rdb), prefix: prefix, missing: make(chan int64, 64), unremembered: map[int64][]string{}}
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

// KeysKey is the Redis hash of the drop's known keys: every buyer's
// idempotency key the gate sent on to PostgreSQL, one field each (keyField).
func (g *Gate) KeysKey(dropID int64) string {
	return g.prefix + "seen:{drop:" + strconv.FormatInt(dropID, 10) + "}"
}

// keyField is a buyer's idempotency key as a field of the known keys.
func keyField(buyerID int64, idemKey string) string {
	h := sha256.Sum256([]byte(idemKey))
	return strconv.FormatInt(buyerID, 10) + ":" + hex.EncodeToString(h[:12])
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
		r, err = g.admits.Do(struct{}{}, admitCall{keys: []string{g.StockKey(dropID), g.KeysKey(dropID)},
			field: keyField(buyerID, idemKey), q: q})
		if err != nil {
			r = admitReply{asked: true, err: err}
		}
	}
	a := Blind
	switch {
	case r.err != nil:
		a = Unsure
	case !r.asked:
		a = Blind
	case r.res == 0:
		a = Bypass
		g.reportMissing(dropID)
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
	ttl := int(g.keysTTL() / time.Second)
	cmds := make([]*redis.Cmd, len(calls))
	asked, _ := g.link.call(context.Background(), "admit", func(ctx context.Context, rdb redis.UniversalClient) error {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				cmds[i] = admitScript.EvalSha(ctx, p, c.keys, c.q, c.field, ttl)
			}
			return nil
		})
		if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return err
		}
		_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
					cmds[i] = admitScript.Eval(ctx, p, c.keys, c.q, c.field, ttl)
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
	g.giveBack(ctx, "refund", dropID, q, -1, keyField(buyerID, idemKey))
}

// SoldOut settles an order the gate let through and PostgreSQL found sold
// out: like Refund, but the counter ends at most at available, what
// PostgreSQL had left. Without the cap a counter that was too high (a
// reconcile racing a stampede) would get every unit back and never drain,
// sending each later buyer to PostgreSQL instead of answering at the gate.
func (g *Gate) SoldOut(ctx context.Context, dropID, buyerID int64, idemKey string, q, available int) {
	g.giveBack(ctx, "sold_out", dropID, q, available, keyField(buyerID, idemKey))
}

// Release gives q units back to the drop's counter, if it has one: stock that
// PostgreSQL got back (a cancel, an expiry, a decline, a restock). A negative
// q takes units away (a shrink).
func (g *Gate) Release(ctx context.Context, dropID int64, q int) {
	g.giveBack(ctx, "release", dropID, q, -1, "")
}

// giveBack runs releaseScript, once more if the first call failed (even
// though that failure started a cooldown): a give-back applied twice leaves
// the counter too high, which is safe, while one lost leaves it too low until
// the next reconcile. While Redis is cooling down nothing is sent; the
// reconcile that follows its recovery makes up for it.
// The counter ends at most at capAt unless it is negative; a non-empty field
// is forgotten from the drop's known keys.
func (g *Gate) giveBack(ctx context.Context, what string, dropID int64, q, capAt int, field string) {
	if g == nil {
		return
	}
	keys, args := []string{g.StockKey(dropID), g.KeysKey(dropID)}, []any{q, capAt}
	if field != "" {
		args = append(args, field)
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

// Load sets the drop's counter to available, PostgreSQL's figure. For a
// drop whose orders the gate has all seen (one being scheduled or started);
// the reconciler restores any other (Restore).
func (g *Gate) Load(ctx context.Context, dropID int64, available int) error {
	return g.LoadMany(ctx, map[int64]int{dropID: available})
}

// LoadMany sets several drops' counters in one pipeline, as Load does.
func (g *Gate) LoadMany(ctx context.Context, available map[int64]int) error {
	if g == nil || g.link == nil || len(available) == 0 {
		return nil
	}
	_, err := g.link.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, n := range available {
			p.Expire(ctx, g.KeysKey(id), g.keysTTL())
			p.Set(ctx, g.StockKey(id), n, g.counterTTL())
		}
		return nil
	})
	return err
}

// Renew sets the counters that exist to available, PostgreSQL's figures,
// renewing them and their known keys, and returns the drops whose counter
// is missing: those need Restore.
func (g *Gate) Renew(ctx context.Context, available map[int64]int) (missing []int64, err error) {
	if g == nil || g.link == nil || len(available) == 0 {
		return nil, nil
	}
	sets := make(map[int64]*redis.StatusCmd, len(available))
	_, err = g.link.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, n := range available {
			p.Expire(ctx, g.KeysKey(id), g.keysTTL())
			sets[id] = p.SetArgs(ctx, g.StockKey(id), n, redis.SetArgs{Mode: "XX", TTL: g.counterTTL()})
		}
		return nil
	})
	for id, c := range sets {
		switch err := c.Err(); {
		case errors.Is(err, redis.Nil): // XX: no counter to set
			missing = append(missing, id)
		case err != nil:
			return nil, err
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	slices.Sort(missing)
	return missing, nil
}

// Restore creates the drop's missing counter at available. The caller has
// first given the gate every key PostgreSQL holds for the drop (RememberHeld),
// and orders that reach PostgreSQL meanwhile are remembered by the admission
// script, so the counter's SOLD_OUT is never given to a key that holds an
// order. created is false when another restore was first.
func (g *Gate) Restore(ctx context.Context, dropID int64, available int) (created bool, err error) {
	if g == nil || g.link == nil {
		return false, nil
	}
	var set *redis.BoolCmd
	_, err = g.link.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Expire(ctx, g.KeysKey(dropID), g.keysTTL())
		set = p.SetNX(ctx, g.StockKey(dropID), available, g.counterTTL())
		return nil
	})
	if err != nil {
		return false, err
	}
	return set.Val(), nil
}

// remember adds fields (keyField) of keys that hold orders to the drop's
// known keys, in calls of at most maxRemember.
func (g *Gate) remember(ctx context.Context, rdb redis.UniversalClient, dropID int64, fields []string) error {
	ttl := int(g.keysTTL() / time.Second)
	for len(fields) > 0 {
		n := min(len(fields), maxRemember)
		args := make([]any, 0, n+1)
		args = append(args, ttl)
		for _, f := range fields[:n] {
			args = append(args, f)
		}
		if err := rememberScript.Run(ctx, rdb, []string{g.KeysKey(dropID)}, args...).Err(); err != nil {
			return err
		}
		fields = fields[n:]
	}
	return nil
}

// maxRemember bounds the keys of one remember call.
const maxRemember = 1000

// RememberHeld adds keys that hold orders of the drop to its known keys.
func (g *Gate) RememberHeld(ctx context.Context, dropID int64, keys []store.HeldKey) error {
	if g == nil || g.link == nil || len(keys) == 0 {
		return nil
	}
	fields := make([]string, len(keys))
	for i, k := range keys {
		fields[i] = keyField(k.BuyerID, k.Key)
	}
	return g.remember(ctx, g.link.rdb, dropID, fields)
}

// Remember tells the gate that the buyer's key holds an order of the drop,
// for an order placed without the gate knowing its key (Blind, Unsure).
// While Redis cannot be told, the key waits in memory for its recovery.
func (g *Gate) Remember(ctx context.Context, dropID, buyerID int64, idemKey string) {
	if g == nil || g.link == nil {
		return
	}
	field := keyField(buyerID, idemKey)
	asked, err := g.call(ctx, "remember", func(ctx context.Context, rdb redis.UniversalClient) error {
		return g.remember(ctx, rdb, dropID, []string{field})
	})
	if asked && err == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held >= maxUnremembered {
		g.overflowed = true
		return
	}
	g.unremembered[dropID] = append(g.unremembered[dropID], field)
	g.held++
}

// rememberWaiting tells Redis the keys that waited for it (Remember). lost
// is true when some were dropped for want of room: every drop's keys must
// then be restored from PostgreSQL.
func (g *Gate) rememberWaiting(ctx context.Context) (lost bool, err error) {
	if g == nil || g.link == nil {
		return false, nil
	}
	g.mu.Lock()
	waiting, lost := g.unremembered, g.overflowed
	g.unremembered, g.held, g.overflowed = map[int64][]string{}, 0, false
	g.mu.Unlock()
	for dropID, fields := range waiting {
		if err = g.remember(ctx, g.link.rdb, dropID, fields); err != nil {
			break
		}
		delete(waiting, dropID)
	}
	if err != nil { // put back what Redis was not told, for the next recovery
		g.mu.Lock()
		for dropID, fields := range waiting {
			g.unremembered[dropID] = append(g.unremembered[dropID], fields...)
			g.held += len(fields)
		}
		g.overflowed = g.overflowed || lost
		g.mu.Unlock()
	}
	return lost, err
}

// Missing carries the drops whose counter an admission found missing, each
// at most every missingEvery, so the reconciler restores them at once.
func (g *Gate) Missing() <-chan int64 {
	if g == nil {
		return nil
	}
	return g.missing
}

func (g *Gate) reportMissing(dropID int64) {
	now := time.Now().UnixNano()
	last, ok := g.missingAt.Load(dropID)
	if ok && now-last.(int64) < int64(missingEvery) {
		return
	}
	if ok && !g.missingAt.CompareAndSwap(dropID, last, now) {
		return
	}
	if !ok {
		if _, loaded := g.missingAt.LoadOrStore(dropID, now); loaded {
			return
		}
	}
	select {
	case g.missing <- dropID:
	default: // the reconciler is busy; the next admission reports it again
		g.missingAt.Delete(dropID)
	}
}

// Forget removes the drop's counter and known keys: for a drop that has
// ended or was cancelled, PostgreSQL answers DROP_NOT_LIVE, or a key's order.
func (g *Gate) Forget(ctx context.Context, dropID int64) {
	if g == nil {
		return
	}
	g.missingAt.Delete(dropID)
	g.call(ctx, "forget", func(ctx context.Context, rdb redis.UniversalClient) error {
		return rdb.Del(ctx, g.StockKey(dropID), g.KeysKey(dropID)).Err()
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
