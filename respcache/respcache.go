// Package respcache keeps whole encoded responses of public queries in the
// instance's memory, bounded in bytes, so a repeated query is answered
// without executing anything. Each response is tagged with the entities and
// lists it holds (drop:12, creator:3:products, liveDrops, …); events and the
// writing instance's mutations evict by tag.
//
// An eviction never races a fill: an entry remembers the eviction sequence
// number of when its execution began, and is dropped when any of its tags
// was evicted after that, so a response computed from data read before a
// change is never served after the change's eviction.
package respcache

import (
	"crypto/sha256"
	"encoding/json"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// MaxTTL caps how long any response is kept, whatever its hints say.
const MaxTTL = 5 * time.Minute

// DefaultSettle is Cache.Settle's default: well past the shared cache
// invalidator's usual lag of a few milliseconds.
const DefaultSettle = time.Second

// entryOverhead approximates the bytes an entry costs beyond its body and tags.
const entryOverhead = 160

var results = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "livedrops_response_cache_total",
	Help: "Response cache outcomes: hit, miss, store, stale (evicted by tag) and evict (tags evicted).",
}, []string{"result"})

var (
	hits      = results.WithLabelValues("hit")
	misses    = results.WithLabelValues("miss")
	stores    = results.WithLabelValues("store")
	staleHits = results.WithLabelValues("stale")
	evictions = results.WithLabelValues("evict")
)

// Entry is one cached response.
type Entry struct {
	Body    []byte
	ETag    string
	Expires time.Time // execution start + the hints' maxAge (at most MaxTTL)
	Tags    []string
	// Since is Seq() as the execution began.
	Since uint64
}

// RemainingAge is the whole seconds left before e expires, at least 1.
func (e *Entry) RemainingAge(now time.Time) int {
	s := int((e.Expires.Sub(now) + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Cache is the instance's response cache. Its methods are safe for
// concurrent use.
type Cache struct {
	// Settle is how long after an event Handle evicts its tags again
	// (DefaultSettle); set it before the first event.
	Settle time.Duration

	store *otter.Cache[string, *Entry]

	mu        sync.RWMutex
	seq       uint64
	evicted   map[string]eviction // tag → its last eviction
	allSeq    uint64              // seq of the last EvictAll
	lastPrune time.Time
}

type eviction struct {
	seq uint64
	at  time.Time
}

// New returns a cache holding at most maxBytes of responses.
func New(maxBytes int) *Cache {
	store := otter.Must(&otter.Options[string, *Entry]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(key string, e *Entry) uint32 {
			n := entryOverhead + len(key) + len(e.Body) + len(e.ETag)
			for _, t := range e.Tags {
				n += len(t) + 16
			}
			return uint32(n)
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *Entry]) time.Duration {
			return time.Until(e.Value.Expires)
		}),
	})
	return &Cache{Settle: DefaultSettle, store: store, evicted: map[string]eviction{}, lastPrune: time.Now()}
}

// Key is the cache key of an operation: its document's SHA-256 (hex, as
// persisted queries name it), its name and its variables (canonical JSON:
// object keys sorted). ok is false for variables JSON cannot encode.
func Key(documentHash, operationName string, variables map[string]any) (key string, ok bool) {
	vars, err := json.Marshal(variables)
	if err != nil {
		return "", false
	}
	h := sha256.New()
	h.Write([]byte(documentHash))
	h.Write([]byte{0})
	h.Write([]byte(operationName))
	h.Write([]byte{0})
	h.Write(vars)
	return string(h.Sum(nil)), true
}

// Seq is the eviction sequence number now; pass it to Put as Entry.Since.
func (c *Cache) Seq() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.seq
}

// Get returns the live entry under key, if any.
func (c *Cache) Get(key string) (*Entry, bool) {
	e, ok := c.store.GetIfPresent(key)
	if !ok || !time.Now().Before(e.Expires) {
		misses.Inc()
		return nil, false
	}
	if c.stale(e) {
		c.store.Invalidate(key)
		staleHits.Inc()
		return nil, false
	}
	hits.Inc()
	return e, true
}

// Put stores e under key unless one of its tags was evicted since e.Since.
func (c *Cache) Put(key string, e *Entry) {
	if c.stale(e) || !time.Now().Before(e.Expires) {
		return
	}
	c.store.Set(key, e)
	stores.Inc()
}

func (c *Cache) stale(e *Entry) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e.Since < c.allSeq {
		return true
	}
	for _, t := range e.Tags {
		if ev, ok := c.evicted[t]; ok && ev.seq > e.Since {
			return true
		}
	}
	return false
}

// Evict makes every response holding any of tags a miss from now on,
// including those still being computed.
func (c *Cache) Evict(tags ...string) {
	if len(tags) == 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	for _, t := range tags {
		c.evicted[t] = eviction{seq: c.seq, at: now}
	}
	evictions.Add(float64(len(tags)))
	// An eviction older than MaxTTL can only concern expired entries.
	if now.Sub(c.lastPrune) > MaxTTL {
		for t, ev := range c.evicted {
			if now.Sub(ev.at) > MaxTTL+time.Second {
				delete(c.evicted, t)
			}
		}
		c.lastPrune = now
	}
}

// EvictAll empties the cache (an event it cannot read).
func (c *Cache) EvictAll() {
	c.mu.Lock()
	c.seq++
	c.allSeq = c.seq
	c.mu.Unlock()
	c.store.InvalidateAll()
	evictions.Inc()
}

// Len is about how many responses are held.
func (c *Cache) Len() int { return c.store.EstimatedSize() }
