package httpapi

import (
	"regexp"
	"strings"
	"testing"
)

func TestDomainErrors(t *testing.T) {
	e := newEnv(t, nil)

	r := e.query(`{ fail(kind: NOT_FOUND) }`, nil)
	if r.status != 200 || len(r.gql.Errors) != 1 {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	got := r.gql.Errors[0]
	if got.Message != "no drop with that id" || got.Extensions["code"] != "BAD_USER_INPUT" || got.Extensions["field"] != "id" ||
		len(got.Path) != 1 || got.Path[0] != "fail" {
		t.Fatalf("error = %+v", got)
	}

	// Wrapped on the way up, with extensions of its own.
	r = e.query(`{ fail(kind: RATE_LIMITED) }`, nil)
	got = r.gql.Errors[0]
	if got.Message != "too many orders, slow down" || got.Extensions["code"] != "RATE_LIMITED" ||
		got.Extensions["retryAfter"] != float64(3) || got.Extensions["field"] != nil {
		t.Fatalf("error = %+v", got)
	}
	if lines := e.logs.lines(t, "internal error"); len(lines) != 0 {
		t.Fatalf("client errors were logged as internal: %v", lines)
	}
}

func TestPlainErrorIsInternal(t *testing.T) {
	e := newEnv(t, nil)
	r := e.query(`{ fail(kind: PLAIN) hello }`, nil)
	if r.status != 200 || r.gql.Data["hello"] != "hello, world" || len(r.gql.Errors) != 1 {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	got := r.gql.Errors[0]
	if got.Message != "internal error" || got.Extensions["code"] != "INTERNAL" || len(got.Extensions) != 1 {
		t.Fatalf("error = %+v", got)
	}
	if strings.Contains(string(r.body), "10.0.0.7") || strings.Contains(string(r.body), "pq:") {
		t.Fatalf("internal detail leaked: %s", r.body)
	}

	id := r.header.Get(RequestIDHeader)
	lines := e.logs.lines(t, "internal error")
	if len(lines) != 1 {
		t.Fatalf("want one internal error line, got %v", lines)
	}
	l := lines[0]
	if l["request_id"] != id || id == "" || !strings.Contains(l["error"].(string), "connection refused") || l["path"] != "fail" {
		t.Fatalf("log line = %v (request id %q)", l, id)
	}
}

func TestPanicIsInternal(t *testing.T) {
	e := newEnv(t, nil)
	r := e.query(`{ fail(kind: PANIC) }`, nil, RequestIDHeader, "panic-1")
	if r.status != 200 || r.code(0) != "INTERNAL" || r.gql.Errors[0].Message != "internal error" {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "exploded") {
		t.Fatalf("panic value leaked: %s", r.body)
	}
	lines := e.logs.lines(t, "panic serving graphql")
	if len(lines) != 1 {
		t.Fatalf("want one panic line, got %v", e.logs)
	}
	l := lines[0]
	if l["request_id"] != "panic-1" || l["panic"] != "resolver exploded" || !strings.Contains(l["stack"].(string), "testschema") {
		t.Fatalf("panic line = %v", l)
	}

	// The server lives on.
	if r := e.query(`{ hello }`, nil); r.status != 200 || r.gql.Data["hello"] != "hello, world" {
		t.Fatalf("after the panic: status %d body %s", r.status, r.body)
	}
}

func TestCoercionErrorsAreBadUserInput(t *testing.T) {
	e := newEnv(t, nil)
	before := e.res.Calls()
	for _, tt := range []struct {
		name      string
		query     string
		variables map[string]any
		status    int
	}{
		{"variable of the wrong type", `query($n: Int!) { items(first: $n) { id } }`, map[string]any{"n": "ten"}, 400},
		{"missing variable", `query($n: Int!) { items(first: $n) { id } }`, nil, 400},
		{"literal of the wrong type", `{ items(first: "ten") { id } }`, nil, 400},
		{"unknown enum value", `{ fail(kind: NOPE) }`, nil, 400},
		{"bad custom scalar literal", `{ items(first: 1, after: "yesterday") { id } }`, nil, 200},
		{"bad custom scalar variable", `query($t: Time) { items(first: 1, after: $t) { id } }`, map[string]any{"t": "yesterday"}, 200},
	} {
		r := e.query(tt.query, tt.variables)
		if r.status != tt.status || r.code(0) != "BAD_USER_INPUT" {
			t.Errorf("%s: status %d body %s", tt.name, r.status, r.body)
		}
	}
	if e.res.Calls() != before {
		t.Fatal("a resolver ran with arguments it could not take")
	}
	if lines := e.logs.lines(t, "internal error"); len(lines) != 0 {
		t.Fatalf("bad input was logged as internal: %v", lines)
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, nil)
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)

	r := e.query(`{ requestId }`, nil, RequestIDHeader, "abc-DEF_123")
	if r.header.Get(RequestIDHeader) != "abc-DEF_123" || r.gql.Data["requestId"] != "abc-DEF_123" {
		t.Fatalf("a good id: header %q, resolver saw %v", r.header.Get(RequestIDHeader), r.gql.Data["requestId"])
	}
	for _, bad := range []string{"", "has space", strings.Repeat("a", 65), "semi;colon"} {
		r := e.query(`{ requestId }`, nil, RequestIDHeader, bad)
		id := r.header.Get(RequestIDHeader)
		if !generated.MatchString(id) || r.gql.Data["requestId"] != id {
			t.Errorf("id %q: replaced by %q, resolver saw %v", bad, id, r.gql.Data["requestId"])
		}
	}
	if r := e.get("/healthz", nil); !generated.MatchString(r.header.Get(RequestIDHeader)) {
		t.Errorf("/healthz has no request id")
	}
	long := strings.Repeat("b", 64)
	if r := e.query(`{ requestId }`, nil, RequestIDHeader, long); r.header.Get(RequestIDHeader) != long {
		t.Errorf("a 64-character id was not kept")
	}

	// Every line of a request carries its id: the access line too.
	var found bool
	for _, l := range e.logs.lines(t, "http request") {
		if l["request_id"] == "abc-DEF_123" && l["path"] == "/query" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no access line with the request id in %s", e.logs)
	}
}
