package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// PoolStatser is a go-redis client: it reports its connection pool.
type PoolStatser interface {
	PoolStats() *redis.PoolStats
}

// redisCollector reads the pool statistics at scrape time, so they are never
// stale and cost nothing between scrapes.
type redisCollector struct {
	c PoolStatser

	hits, misses, timeouts, waits, waitSeconds *prometheus.Desc
	total, idle, stale                         *prometheus.Desc
}

func newRedisCollector(c PoolStatser) *redisCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("livedrops_redis_pool_"+name, help, nil, nil)
	}
	return &redisCollector{
		c:           c,
		hits:        desc("hits_total", "Times a free connection was found in the pool."),
		misses:      desc("misses_total", "Times no free connection was found in the pool."),
		timeouts:    desc("timeouts_total", "Times waiting for a pool connection timed out."),
		waits:       desc("waits_total", "Times a caller waited for a pool connection."),
		waitSeconds: desc("wait_seconds_total", "Time spent waiting for pool connections."),
		total:       desc("conns", "Connections in the pool."),
		idle:        desc("idle_conns", "Idle connections in the pool."),
		stale:       desc("stale_conns_total", "Stale connections removed from the pool."),
	}
}

func (rc *redisCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rc.hits, rc.misses, rc.timeouts, rc.waits, rc.waitSeconds, rc.total, rc.idle, rc.stale} {
		ch <- d
	}
}

func (rc *redisCollector) Collect(ch chan<- prometheus.Metric) {
	s := rc.c.PoolStats()
	if s == nil {
		return
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(rc.hits, float64(s.Hits))
	counter(rc.misses, float64(s.Misses))
	counter(rc.timeouts, float64(s.Timeouts))
	counter(rc.waits, float64(s.WaitCount))
	counter(rc.waitSeconds, (time.Duration(s.WaitDurationNs)).Seconds())
	counter(rc.stale, float64(s.StaleConns))
	gauge(rc.total, float64(s.TotalConns))
	gauge(rc.idle, float64(s.IdleConns))
}
