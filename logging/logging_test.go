package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"livedrops/domain"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewLevelsAndRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := New("WARN", &buf)
	ctx := domain.WithRequestID(t.Context(), "req-1")
	log.InfoContext(ctx, "hidden")
	log.With("part", "orders").WarnContext(ctx, "shown")
	got := lines(t, &buf)
	if len(got) != 1 {
		t.Fatalf("want 1 line at warn, got %v", got)
	}
	if got[0]["msg"] != "shown" || got[0]["request_id"] != "req-1" || got[0]["part"] != "orders" {
		t.Fatalf("line = %v", got[0])
	}
}

func TestNewUnknownLevel(t *testing.T) {
	var buf bytes.Buffer
	log := New("loud", &buf)
	log.Info("kept")
	got := lines(t, &buf)
	if len(got) != 2 || got[0]["level"] != "WARN" || got[1]["msg"] != "kept" {
		t.Fatalf("lines = %v", got)
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Fatal("ParseLevel accepted an unknown level")
	}
}

func TestWithRequestIDsWrapsOnce(t *testing.T) {
	var buf bytes.Buffer
	plain := slog.New(slog.NewJSONHandler(&buf, nil))
	log := WithRequestIDs(WithRequestIDs(plain))
	log.InfoContext(domain.WithRequestID(t.Context(), "abc"), "x")
	if strings.Count(buf.String(), `"request_id"`) != 1 {
		t.Fatalf("want the request id once: %s", buf.String())
	}
}

func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	log := New("info", &buf)
	var doneStatus int
	h := AccessLog(log, AccessOptions{
		Quiet: func(r *http.Request) bool { return r.URL.Path == "/healthz" },
		Done:  func(r *http.Request, status int, _ time.Duration) { doneStatus = status },
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := RequestFrom(r.Context())
		rec.SetOperation("PlaceOrder", "mutation")
		rec.AddErrorCode("SOLD_OUT")
		rec.AddErrorCode("SOLD_OUT")
		if r.URL.Path == "/boom" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("hello"))
	}))

	req := httptest.NewRequest("POST", "/query", nil)
	req = req.WithContext(domain.WithRequestID(req.Context(), "rid-7"))
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom", nil))

	got := lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("want the quiet line dropped at info, got %v", got)
	}
	l := got[0]
	if l["method"] != "POST" || l["path"] != "/query" || l["status"] != float64(418) || l["bytes"] != float64(5) ||
		l["request_id"] != "rid-7" || l["operation"] != "PlaceOrder" || l["operation_type"] != "mutation" {
		t.Fatalf("access line = %v", l)
	}
	codes, _ := l["error_codes"].([]any)
	if len(codes) != 1 || codes[0] != "SOLD_OUT" {
		t.Fatalf("error codes = %v", l["error_codes"])
	}
	if _, ok := l["duration_ms"].(float64); !ok {
		t.Fatalf("no duration: %v", l)
	}
	if got[1]["level"] != "ERROR" || got[1]["status"] != float64(500) {
		t.Fatalf("server error line = %v", got[1])
	}
	if doneStatus != 500 {
		t.Fatalf("Done saw status %d", doneStatus)
	}
}

func TestRequestNilSafe(t *testing.T) {
	var r *Request
	r.SetOperation("x", "query")
	r.AddErrorCode("X")
	if RequestFrom(t.Context()) != nil {
		t.Fatal("a bare context has a record")
	}
}
