package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestContentNegotiation(t *testing.T) {
	e := newEnv(t, nil)
	const ok, invalid, unparsable = `{"query":"{ hello }"}`, `{"query":"{ nope }"}`, `{"query":"{"}`
	tests := []struct {
		accept string
		media  string
		// status of a well-formed request that fails validation or parsing
		failStatus int
	}{
		{"", mediaJSON, 200},
		{"*/*", mediaJSON, 200},
		{"application/*", mediaJSON, 200},
		{"application/graphql-response+json", mediaGraphQLResponse, 400},
		{"application/json", mediaJSON, 200},
		{"application/json, application/graphql-response+json", mediaJSON, 200},
		{"application/graphql-response+json, application/json", mediaGraphQLResponse, 400},
		{"application/graphql-response+json;q=0.5, application/json;q=0.9", mediaJSON, 200},
		{"application/json, */*", mediaJSON, 200},
		{"text/html, application/json;q=0.1", mediaJSON, 200},
		{"application/graphql-response+json;q=0, */*", mediaJSON, 200},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			headers := []string{"Accept", tt.accept} // "": no Accept at all
			r := e.post(ok, headers...)
			if r.status != 200 || r.media != tt.media || r.gql.Data["hello"] != "hello, world" {
				t.Fatalf("valid query: status %d, media %q, body %s", r.status, r.media, r.body)
			}
			r = e.post(invalid, headers...)
			if r.status != tt.failStatus || r.media != tt.media || r.code(0) != "GRAPHQL_VALIDATION_FAILED" || bytes.Contains(r.body, []byte(`"data"`)) {
				t.Fatalf("invalid query: status %d, media %q, body %s", r.status, r.media, r.body)
			}
			r = e.post(unparsable, headers...)
			if r.status != tt.failStatus || r.media != tt.media || r.code(0) != "GRAPHQL_PARSE_FAILED" || bytes.Contains(r.body, []byte(`"data"`)) {
				t.Fatalf("unparsable query: status %d, media %q, body %s", r.status, r.media, r.body)
			}
		})
	}

	t.Run("unacceptable", func(t *testing.T) {
		r := e.post(ok, "Accept", "text/html")
		if r.status != http.StatusNotAcceptable || r.code(0) != "BAD_USER_INPUT" {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
	})
}

func TestGET(t *testing.T) {
	e := newEnv(t, nil)
	r := e.get("/query", url.Values{"query": {"query Hi($n: String) { hello(name: $n) }"}, "variables": {`{"n":"drop"}`}})
	if r.status != 200 || r.gql.Data["hello"] != "hello, drop" {
		t.Fatalf("GET query: status %d body %s", r.status, r.body)
	}

	before := e.res.Calls()
	for _, accept := range []string{"application/json", "application/graphql-response+json"} {
		r = e.get("/query", url.Values{"query": {"mutation { bump }"}}, "Accept", accept)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" || r.code(0) != "BAD_USER_INPUT" ||
			!strings.Contains(r.gql.Errors[0].Message, "mutation") {
			t.Fatalf("GET mutation (%s): status %d allow %q body %s", accept, r.status, r.header.Get("Allow"), r.body)
		}
	}
	if e.res.Calls() != before {
		t.Fatal("a mutation over GET ran")
	}

	r = e.get("/query", url.Values{"query": {"{ hello }"}, "variables": {"[7]"}})
	if r.status != 400 || r.code(0) != "BAD_USER_INPUT" {
		t.Fatalf("GET with array variables: status %d body %s", r.status, r.body)
	}
}

func TestWrongMediaTypeAndMethod(t *testing.T) {
	e := newEnv(t, nil)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=latin1"} {
		req, _ := http.NewRequest("POST", e.srv.URL+"/query", strings.NewReader(`{"query":"{ hello }"}`))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		r := e.do(req)
		if r.status != http.StatusUnsupportedMediaType || r.code(0) != "BAD_USER_INPUT" {
			t.Errorf("Content-Type %q: status %d body %s", ct, r.status, r.body)
		}
	}
	r := e.post(`{"query":"{ hello }"}`, "Content-Type", "application/json; charset=utf-8")
	if r.status != 200 {
		t.Errorf("utf-8 charset: status %d body %s", r.status, r.body)
	}

	req, _ := http.NewRequest("PUT", e.srv.URL+"/query", strings.NewReader(`{"query":"{ hello }"}`))
	req.Header.Set("Content-Type", "application/json")
	r = e.do(req)
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, POST" || r.code(0) != "BAD_USER_INPUT" {
		t.Errorf("PUT: status %d allow %q body %s", r.status, r.header.Get("Allow"), r.body)
	}
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct{ body, want string }{
		{`{"query":`, "bad request body"},
		{`NONSENSE`, "bad request body"},
		{`[{"query":"{ hello }"}]`, "JSON object"},
		{`{"query":"{ hello }"} trailing`, "after the JSON value"},
		{`{"query": 7}`, "query must not be a JSON number"},
		{`{"query":"query Q($i: Int!) { items(first: $i) { id } }","variables":[7]}`, "variables must not be a JSON array"},
		{`{"qeury":"{ hello }"}`, "no query"},
		{``, "bad request body"},
	} {
		for _, accept := range []string{"application/json", "application/graphql-response+json"} {
			r := e.post(tt.body, "Accept", accept)
			if r.status != 400 || r.code(0) != "BAD_USER_INPUT" || !strings.Contains(r.gql.Errors[0].Message, tt.want) {
				t.Errorf("body %q (%s): status %d body %s", tt.body, accept, r.status, r.body)
			}
			if strings.Contains(tt.body, "NONSENSE") && strings.Contains(string(r.body), "NONSENSE") {
				t.Errorf("the malformed body is echoed back: %s", r.body)
			}
		}
	}
}

// hideLength keeps http.NewRequest from learning the body's length, so it
// is sent chunked.
type hideLength struct{ io.Reader }

func TestOversizedBody(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	big := `{"query":"{ hello }","variables":{"pad":"` + strings.Repeat("x", 2000) + `"}}`

	r := e.post(big)
	if r.status != http.StatusRequestEntityTooLarge || r.code(0) != "BAD_USER_INPUT" {
		t.Fatalf("with Content-Length: status %d body %s", r.status, r.body)
	}

	req, _ := http.NewRequest("POST", e.srv.URL+"/query", hideLength{strings.NewReader(big)})
	req.Header.Set("Content-Type", "application/json")
	r = e.do(req)
	if r.status != http.StatusRequestEntityTooLarge || r.code(0) != "BAD_USER_INPUT" || req.ContentLength != 0 {
		t.Fatalf("chunked: status %d body %s", r.status, r.body)
	}

	if r := e.post(`{"query":"{ hello }"}`); r.status != 200 {
		t.Fatalf("small body: status %d body %s", r.status, r.body)
	}
}

func TestSubscriptionOverPlainHTTPRefused(t *testing.T) {
	e := newEnv(t, nil)
	before := e.res.Calls()
	r := e.query("subscription { ticks(count: 2) }", nil)
	if r.status != 400 || r.code(0) != "BAD_USER_INPUT" || !strings.Contains(r.gql.Errors[0].Message, "WebSocket") {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	if e.res.Calls() != before {
		t.Fatal("the subscription resolver ran")
	}
}

func TestNegotiate(t *testing.T) {
	for _, tt := range []struct {
		accept []string
		want   string
		ok     bool
	}{
		{nil, mediaJSON, true},
		{[]string{"*/*"}, mediaJSON, true},
		{[]string{"application/json", "application/graphql-response+json"}, mediaJSON, true},
		{[]string{"application/graphql-response+json;q=0.8", "application/json;q=0.8"}, mediaGraphQLResponse, true},
		{[]string{"application/*;q=0.2, application/json;q=0.1"}, mediaGraphQLResponse, true},
		{[]string{"image/png"}, "", false},
		{[]string{"application/json;q=0"}, "", false},
		{[]string{";;;"}, mediaJSON, true},
	} {
		got, ok := negotiate(tt.accept)
		if got != tt.want || ok != tt.ok {
			t.Errorf("negotiate(%q) = %q, %v; want %q, %v", tt.accept, got, ok, tt.want, tt.ok)
		}
	}
}
