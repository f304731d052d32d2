package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"livedrops/logging"
	"livedrops/metrics"
)

// Operations is the handler of the operators' listener (INTERNAL_ADDR),
// apart from the public one: /metrics (Prometheus), net/http/pprof under
// /debug/pprof/ and internal (the internal API) under /internal/.
func Operations(internal http.Handler, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	log = logging.WithRequestIDs(log)
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if internal != nil {
		mux.Handle("/internal/", internal)
	}
	access := logging.AccessLog(log, logging.AccessOptions{
		Quiet: func(r *http.Request) bool {
			return r.URL.Path == "/metrics" || strings.HasPrefix(r.URL.Path, "/debug/pprof/")
		},
		Done: func(r *http.Request, status int, _ time.Duration) {
			metrics.CountHTTPRequest(routeLabel(r), status)
		},
	})
	return withRequestID(access(recoverHTTP(log, mux)))
}
