// Package cache is the Redis read-through cache behind the dataloaders:
// by-id reads look in Redis first (one MGET), fill the misses from PostgreSQL
// once, and write them back with a TTL. Redis is an optimisation here, never
// required: when it fails, every read goes to the fill function.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

// Kinds of cached values. A write evicts the kinds it changed, by id
// (Evict(ctx, KindProduct, id)), in the instance that wrote and, through the
// outbox events, in the others.
const (
	KindUser    = "user"    // *domain.User by user id (no password hash)
	KindCreator = "creator" // *domain.Creator by creator id (follower count included)
	// KindCreatorOfUser maps a user id to its creator id; it never changes
	// once set, and a user who is no creator is not cached.
	KindCreatorOfUser = "creator_of_user"
	KindProduct       = "product"       // *domain.Product by product id
	KindMedia         = "media"         // *domain.Media by media id (immutable)
	KindProductMedia  = "product_media" // a product's media list by product id
)

var (
	hits = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_cache_hits_total",
		Help: "By-id reads answered from Redis, by kind.",
	}, []string{"kind"})
	misses = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_cache_misses_total",
		Help: "By-id reads Redis did not have, filled from the database, by kind.",
	}, []string{"kind"})
	failures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_cache_errors_total",
		Help: "Redis failures the cache worked around (read, write, evict or decode), by kind.",
	}, []string{"kind", "op"})
)

// Cache reads and writes JSON values under <prefix><kind>:<id>.
type Cache struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	near   *Near // evicted with Redis, when set
}

// EvictsNear makes Evict remove the values from this instance's near cache n
// too, so an eviction asked here (a write, the internal API) is read here at once.
func (c *Cache) EvictsNear(n *Near) { c.near = n }

// New returns a cache on rdb whose keys start with prefix and live for ttl.
func New(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Cache {
	return &Cache{rdb: rdb, prefix: prefix, ttl: ttl}
}

// Connect returns a client for a Redis URL: redis://[user:pass@]host:port[/db]
// for one server, or a Cluster seed list as
// redis://host1:port?addr=host2:port&addr=host3:port (or ?cluster=true with
// one seed), which gets a cluster client. The connection is made lazily.
func Connect(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cache: parse Redis URL: %w", err)
	}
	// The seeds beyond the first and the cluster flag are ours; go-redis
	// parses the rest of the URL as for one server.
	q := u.Query()
	seeds := q["addr"]
	cluster := len(seeds) > 0 || q.Get("cluster") == "true"
	q.Del("addr")
	q.Del("cluster")
	u.RawQuery = q.Encode()
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("cache: parse Redis URL: %w", err)
	}
	// Redis is an optimisation: when it is down, a request must fall back to
	// PostgreSQL in milliseconds, not wait out go-redis's default retries.
	orDefault := func(d, def time.Duration) time.Duration {
		if d == 0 {
			return def
		}
		return d
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 append([]string{opts.Addr}, seeds...),
		IsClusterMode:         cluster,
		DB:                    opts.DB,
		ClientName:            opts.ClientName,
		Protocol:              opts.Protocol,
		Username:              opts.Username,
		Password:              opts.Password,
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           orDefault(opts.DialTimeout, 500*time.Millisecond),
		ReadTimeout:           orDefault(opts.ReadTimeout, 500*time.Millisecond),
		WriteTimeout:          orDefault(opts.WriteTimeout, 500*time.Millisecond),
		ContextTimeoutEnabled: true,
		PoolFIFO:              opts.PoolFIFO,
		PoolSize:              opts.PoolSize,
		PoolTimeout:           opts.PoolTimeout,
		MinIdleConns:          opts.MinIdleConns,
		MaxIdleConns:          opts.MaxIdleConns,
		MaxActiveConns:        opts.MaxActiveConns,
		ConnMaxIdleTime:       opts.ConnMaxIdleTime,
		ConnMaxLifetime:       opts.ConnMaxLifetime,
		TLSConfig:             opts.TLSConfig,
	}), nil
}

// LogTo sends go-redis's own log lines (dial failures, pool trouble) to log
// as warnings, instead of plain text on standard error.
func LogTo(log *slog.Logger) { redis.SetLogger(redisLog{log}) }

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// Key is the Redis key of one cached value.
func (c *Cache) Key(kind string, id int64) string {
	return c.prefix + kind + ":" + strconv.FormatInt(id, 10)
}

// GetMany returns the values of ids of one kind: hits come from Redis in one
// round trip, and fill is called once with every miss; what it returns is
// written back with the cache's TTL. Ids fill does not return are absent
// from the result and are not cached, so something created later is seen.
func GetMany[T any](ctx context.Context, c *Cache, kind string, ids []int64, fill func(ctx context.Context, missing []int64) (map[int64]T, error)) (map[int64]T, error) {
	return GetNewer(ctx, c, kind, ids, nil, fill)
}

// GetNewer is GetMany where a value Redis holds that stale reports as too old
// (an event announced a newer one) counts as missing: it is filled and
// written over.
func GetNewer[T any](ctx context.Context, c *Cache, kind string, ids []int64, stale func(id int64, v *T) bool,
	fill func(ctx context.Context, missing []int64) (map[int64]T, error)) (map[int64]T, error) {
	ids = unique(ids)
	out := make(map[int64]T, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if c == nil {
		return fillAll(ctx, ids, fill, out)
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = c.Key(kind, id)
	}
	raw, err := c.read(ctx, keys)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("cache: read %d %s: %w", len(ids), kind, ctx.Err())
		}
		failures.WithLabelValues(kind, "read").Inc()
		slog.DebugContext(ctx, "redis read failed; reading the database", "component", "cache", "kind", kind, "keys", len(keys), "err", err)
		misses.WithLabelValues(kind).Add(float64(len(ids)))
		return fillAll(ctx, ids, fill, out)
	}

	var missing []int64
	for i, id := range ids {
		if raw[i] == nil {
			missing = append(missing, id)
			continue
		}
		var v T
		if err := json.Unmarshal(raw[i], &v); err != nil {
			// A value written by an older shape of T is refilled, not trusted.
			failures.WithLabelValues(kind, "decode").Inc()
			missing = append(missing, id)
			continue
		}
		if stale != nil && stale(id, &v) {
			missing = append(missing, id)
			continue
		}
		out[id] = v
	}
	hits.WithLabelValues(kind).Add(float64(len(ids) - len(missing)))
	if len(missing) == 0 {
		return out, nil
	}
	misses.WithLabelValues(kind).Add(float64(len(missing)))
	filled, err := fill(ctx, missing)
	if err != nil {
		return nil, err
	}
	if err := setMany(ctx, c, kind, filled); err != nil {
		failures.WithLabelValues(kind, "write").Inc()
		slog.DebugContext(ctx, "redis write failed", "component", "cache", "kind", kind, "keys", len(filled), "err", err)
	}
	for id, v := range filled {
		out[id] = v
	}
	return out, nil
}

// Evict removes the cached values of ids, so the next read goes to the database.
func (c *Cache) Evict(ctx context.Context, kind string, ids ...int64) error {
	if c == nil || len(ids) == 0 {
		return nil
	}
	if c.near != nil {
		c.near.Evict(kind, ids...)
	}
	// One DEL per key in a pipeline: a cluster routes each to its node.
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Del(ctx, c.Key(kind, id))
		}
		return nil
	})
	if err != nil {
		failures.WithLabelValues(kind, "evict").Inc()
		return fmt.Errorf("cache: evict %d %s: %w", len(ids), kind, err)
	}
	return nil
}

// read reads keys in one round trip, shared with the other reads of ctx's
// wave when it has one (WithWave).
func (c *Cache) read(ctx context.Context, keys []string) ([][]byte, error) {
	if w, ok := ctx.Value(waveKey{}).(*wave); ok && w.c == c {
		return w.read(ctx, keys)
	}
	got, err := c.get(ctx, [][]string{keys})
	if err != nil {
		return nil, err
	}
	return got[0], nil
}

// get reads each set of keys in one pipeline: one MGET per set, or on a
// cluster, where keys of different slots cannot share an MGET, one GET per key.
func (c *Cache) get(ctx context.Context, sets [][]string) ([][][]byte, error) {
	_, cluster := c.rdb.(*redis.ClusterClient)
	var gets [][]*redis.StringCmd
	var mgets []*redis.SliceCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, keys := range sets {
			if !cluster {
				mgets = append(mgets, p.MGet(ctx, keys...))
				continue
			}
			cmds := make([]*redis.StringCmd, len(keys))
			for i, k := range keys {
				cmds[i] = p.Get(ctx, k)
			}
			gets = append(gets, cmds)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([][][]byte, len(sets))
	for s, keys := range sets {
		out[s] = make([][]byte, len(keys))
		if cluster {
			for i, cmd := range gets[s] {
				if b, err := cmd.Bytes(); err == nil {
					out[s][i] = b
				}
			}
			continue
		}
		for i, v := range mgets[s].Val() {
			if str, ok := v.(string); ok {
				out[s][i] = []byte(str)
			}
		}
	}
	return out, nil
}

// WaveWindow is how long the first read of a wave waits for the others: the
// loaders of one GraphQL level send their batches within microseconds.
const WaveWindow = 300 * time.Microsecond

type waveKey struct{}

// wave gathers the reads of c a request's loaders send at about the same
// moment, so the drop page's product and creator cost one round trip.
type wave struct {
	c    *Cache
	mu   sync.Mutex
	open *waveReads
}

// waveReads is one round trip's reads and, once done is closed, their answers.
type waveReads struct {
	sets [][]string
	done chan struct{}
	got  [][][]byte
	err  error
}

// WithWave returns ctx whose reads of c are sent together, a wave at a time.
func WithWave(ctx context.Context, c *Cache) context.Context {
	if c == nil {
		return ctx
	}
	return context.WithValue(ctx, waveKey{}, &wave{c: c})
}

func (w *wave) read(ctx context.Context, keys []string) ([][]byte, error) {
	w.mu.Lock()
	r := w.open
	if r == nil {
		r = &waveReads{done: make(chan struct{})}
		w.open = r
		// The round trip serves every joiner: one giving up does not cancel it.
		sendCtx := context.WithoutCancel(ctx)
		time.AfterFunc(WaveWindow, func() { w.send(sendCtx, r) })
	}
	i := len(r.sets)
	r.sets = append(r.sets, keys)
	w.mu.Unlock()
	select {
	case <-r.done:
		if r.err != nil {
			return nil, r.err
		}
		return r.got[i], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (w *wave) send(ctx context.Context, r *waveReads) {
	w.mu.Lock()
	if w.open == r {
		w.open = nil
	}
	w.mu.Unlock()
	r.got, r.err = w.c.get(ctx, r.sets)
	close(r.done)
}

// setMany writes values with the cache's TTL in one pipelined round trip.
func setMany[T any](ctx context.Context, c *Cache, kind string, values map[int64]T) error {
	if len(values) == 0 {
		return nil
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, v := range values {
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode %s %d: %w", kind, id, err)
			}
			p.Set(ctx, c.Key(kind, id), b, c.ttl)
		}
		return nil
	})
	return err
}

func fillAll[T any](ctx context.Context, ids []int64, fill func(context.Context, []int64) (map[int64]T, error), out map[int64]T) (map[int64]T, error) {
	filled, err := fill(ctx, ids)
	if err != nil {
		return nil, err
	}
	for id, v := range filled {
		out[id] = v
	}
	return out, nil
}

// unique returns ids without repeats, in first-seen order.
func unique(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
