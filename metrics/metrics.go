// Package metrics holds the Prometheus metrics every part of Live Drops
// shares, and serves them.
//
// One registry for the whole process: prometheus.DefaultRegisterer, which
// already carries the Go runtime and process collectors. A package with
// metrics of its own declares them with promauto (promauto.NewCounterVec and
// friends register on the default registry) and needs nothing from here;
// Handler serves everything registered there. Names start with "livedrops_".
package metrics

import (
	"database/sql"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Shared metrics. Their label values are bounded: operation names through
// OperationLabel, error codes by the server's own vocabulary, routes by the
// router's patterns.
var (
	GraphQLDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "livedrops_graphql_duration_seconds",
		Help:    "Time to execute a GraphQL query or mutation, by operation name and type.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"operation", "type"})

	GraphQLErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_graphql_errors_total",
		Help: "GraphQL errors sent to clients, by extensions.code.",
	}, []string{"code"})

	HTTPRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "livedrops_http_requests_total",
		Help: "HTTP requests served, by route pattern and status code.",
	}, []string{"route", "status"})
)

// MaxOperationNames caps the distinct operation names GraphQLDuration keeps:
// clients choose the names, so past this many every new one counts as "other".
const MaxOperationNames = 200

var operationNames = struct {
	sync.Mutex
	seen map[string]struct{}
}{seen: map[string]struct{}{}}

// OperationLabel returns the label value for a GraphQL operation name:
// "anonymous" for none, the name itself for the first MaxOperationNames
// names seen, "other" after that.
func OperationLabel(name string) string {
	if name == "" {
		return "anonymous"
	}
	operationNames.Lock()
	defer operationNames.Unlock()
	if _, ok := operationNames.seen[name]; ok {
		return name
	}
	if len(operationNames.seen) >= MaxOperationNames {
		return "other"
	}
	operationNames.seen[name] = struct{}{}
	return name
}

// ObserveOperation records how long a GraphQL operation took.
func ObserveOperation(name, opType string, d time.Duration) {
	GraphQLDuration.WithLabelValues(OperationLabel(name), opType).Observe(d.Seconds())
}

// CountError counts one GraphQL error sent with the given code.
func CountError(code string) {
	GraphQLErrors.WithLabelValues(code).Inc()
}

// CountHTTPRequest counts one HTTP request answered on route with status.
func CountHTTPRequest(route string, status int) {
	HTTPRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}

// Handler serves every metric of the default registry in the Prometheus
// exposition format.
func Handler() http.Handler {
	return promhttp.Handler()
}

// registered holds the pool collectors, so registering a new pool replaces
// the old one instead of failing on duplicate metric names.
var registered = struct {
	sync.Mutex
	db, redis, statements prometheus.Collector
}{}

// RegisterDBStats exports the connection pool statistics of db
// (go_sql_* metrics, db_name="livedrops"). A later call replaces the pool
// registered before, so a process (or a test) may reopen its database.
func RegisterDBStats(db *sql.DB) {
	registered.Lock()
	defer registered.Unlock()
	replace(&registered.db, collectors.NewDBStatsCollector(db, "livedrops"))
}

// RegisterRedisStats exports the connection pool statistics of a go-redis
// client (*redis.Client, *redis.ClusterClient and redis.UniversalClient all
// have PoolStats). A later call replaces the client registered before.
func RegisterRedisStats(c PoolStatser) {
	registered.Lock()
	defer registered.Unlock()
	replace(&registered.redis, newRedisCollector(c))
}

// RegisterStatements exports count, the number of SQL statements the store
// has sent, as livedrops_sql_statements_total. A later call replaces the
// counter registered before.
func RegisterStatements(count func() int64) {
	registered.Lock()
	defer registered.Unlock()
	replace(&registered.statements, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "livedrops_sql_statements_total",
		Help: "SQL statements sent to PostgreSQL by the store.",
	}, func() float64 { return float64(count()) }))
}

func replace(slot *prometheus.Collector, c prometheus.Collector) {
	if *slot != nil {
		prometheus.Unregister(*slot)
	}
	prometheus.MustRegister(c)
	*slot = c
}
