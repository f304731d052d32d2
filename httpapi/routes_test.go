package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/logging"
)

func TestHealthz(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Ready = []Check{{Name: "down", Fn: func(context.Context) error { return errors.New("x") }}}
	})
	r := e.get("/healthz", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
}

func TestReadyz(t *testing.T) {
	var dbDown atomic.Bool
	e := newEnv(t, func(o *Options) {
		o.Ready = []Check{
			{Name: "postgres", Fn: func(context.Context) error {
				if dbDown.Load() {
					return errors.New("dial tcp 10.0.0.7:5432: connection refused")
				}
				return nil
			}},
			{Name: "redis", Fn: func(context.Context) error { return nil }},
		}
	})

	r := e.get("/readyz", nil)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
		t.Fatalf("all up: status %d body %s", r.status, r.body)
	}

	dbDown.Store(true)
	r = e.get("/readyz", nil)
	if r.status != 503 {
		t.Fatalf("postgres down: status %d body %s", r.status, r.body)
	}
	var body struct {
		Status string         `json:"status"`
		Failed []checkFailure `json:"failed"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "unavailable" || len(body.Failed) != 1 || body.Failed[0] != (checkFailure{"postgres", "unavailable"}) {
		t.Fatalf("body %s", r.body)
	}
	if strings.Contains(string(r.body), "10.0.0.7") {
		t.Fatalf("internal detail leaked: %s", r.body)
	}
	if lines := e.logs.lines(t, "readiness check failed"); len(lines) != 1 || lines[0]["check"] != "postgres" {
		t.Fatalf("failure not logged: %v", lines)
	}
}

func TestReadyzTimesOutAHangingCheck(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e := newEnv(t, func(o *Options) {
		o.Ready = []Check{
			{Name: "ignores-ctx", Fn: func(context.Context) error { <-release; return nil }},
			{Name: "kafka", Fn: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		}
	})
	start := time.Now()
	r := e.get("/readyz", nil)
	if d := time.Since(start); d > checkTimeout+time.Second {
		t.Fatalf("readyz took %v", d)
	}
	want := `{"status":"unavailable","failed":[{"name":"ignores-ctx","reason":"timeout"},{"name":"kafka","reason":"timeout"}]}`
	if r.status != 503 || strings.TrimSpace(string(r.body)) != want {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Playground = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/nowhere" {
				http.NotFound(w, r)
				return
			}
			_, _ = io.WriteString(w, "playground "+r.URL.Path)
		})
		o.Extra = map[string]http.Handler{
			"/internal/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "internal "+r.URL.Path)
			}),
		}
	})
	for path, want := range map[string]string{
		"/":                 "playground /",
		"/assets/app.js":    "playground /assets/app.js",
		"/drops/7":          "playground /drops/7",
		"/internal/restock": "internal /internal/restock",
	} {
		if r := e.get(path, nil); r.status != 200 || string(r.body) != want {
			t.Errorf("%s: status %d body %q", path, r.status, r.body)
		}
	}
	if r := e.get("/nowhere", nil); r.status != 404 {
		t.Errorf("/nowhere: status %d", r.status)
	}
	if r := e.get("/query/more", nil); r.status != 200 || string(r.body) != "playground /query/more" {
		t.Errorf("/query/more: status %d body %q", r.status, r.body)
	}

	bare := newEnv(t, nil)
	if r := bare.get("/", nil); r.status != 404 {
		t.Errorf("no Playground, /: status %d", r.status)
	}
}

func TestAuthenticateAndPerRequestWrapQuery(t *testing.T) {
	var order []string
	e := newEnv(t, func(o *Options) {
		o.Authenticate = func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, "auth")
				if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
					r = r.WithContext(domain.WithViewer(r.Context(), &domain.Viewer{UserID: 1, Handle: h}))
				}
				next.ServeHTTP(w, r)
			})
		}
		mw := func(name string) func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					order = append(order, name)
					next.ServeHTTP(w, r)
				})
			}
		}
		o.PerRequest = []func(http.Handler) http.Handler{mw("loaders"), mw("tx")}
	})
	r := e.query(`{ viewer }`, nil, "Authorization", "Bearer alice")
	if r.gql.Data["viewer"] != "alice" {
		t.Fatalf("body %s", r.body)
	}
	if strings.Join(order, ",") != "auth,loaders,tx" {
		t.Fatalf("middleware order %v", order)
	}
	order = nil
	e.get("/healthz", nil)
	if len(order) != 0 {
		t.Fatalf("query middleware ran for /healthz: %v", order)
	}
}

func TestMetricsAndAccessLog(t *testing.T) {
	e := newEnv(t, nil)
	e.query(`query AccessLogged { hello fail(kind: PLAIN) }`, nil, RequestIDHeader, "access-1")
	e.post(`{"query":`)

	if r := e.get("/metrics", nil); r.status != http.StatusNotFound {
		t.Fatalf("/metrics on the public handler: status %d, want 404", r.status)
	}
	ops := httptest.NewServer(Operations(nil, logging.New("debug", e.logs)))
	defer ops.Close()
	resp, err := http.Get(ops.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := reply{status: resp.StatusCode, body: body}
	if r.status != 200 {
		t.Fatalf("/metrics: status %d", r.status)
	}
	for _, want := range []string{
		`livedrops_http_requests_total{route="/query",status="200"}`,
		`livedrops_http_requests_total{route="/query",status="400"}`,
		`livedrops_graphql_errors_total{code="INTERNAL"}`,
		`livedrops_graphql_errors_total{code="BAD_USER_INPUT"}`,
		`livedrops_graphql_duration_seconds_count{operation="AccessLogged",type="query"}`,
		"go_goroutines",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	var line map[string]any
	for _, l := range e.logs.lines(t, "http request") {
		if l["request_id"] == "access-1" {
			line = l
		}
	}
	if line == nil {
		t.Fatalf("no access line: %s", e.logs)
	}
	codes, _ := line["error_codes"].([]any)
	if line["operation"] != "AccessLogged" || line["operation_type"] != "query" || line["status"] != float64(200) ||
		line["method"] != "POST" || len(codes) != 1 || codes[0] != "INTERNAL" {
		t.Fatalf("access line %v", line)
	}
	for _, l := range e.logs.lines(t, "http request") {
		if l["path"] == "/metrics" && l["level"] != "DEBUG" {
			t.Fatalf("a scrape was logged at %v", l["level"])
		}
	}
}
