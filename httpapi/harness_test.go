package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"livedrops/httpapi/internal/testschema"
	"livedrops/logging"
)

// syncBuffer collects log lines written from the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines whose msg is msg ("" for all).
func (b *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if msg == "" || m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	t    *testing.T
	srv  *httptest.Server
	res  *testschema.Resolver
	logs *syncBuffer
}

// newEnv serves New with the test schema; edit adjusts the options.
func newEnv(t *testing.T, edit func(*Options)) *env {
	t.Helper()
	schema, res := testschema.New()
	logs := &syncBuffer{}
	o := Options{
		Schema: schema,
		Log:    logging.New("debug", logs),
	}
	if edit != nil {
		edit(&o)
	}
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, res: res, logs: logs}
}

// reply is a decoded HTTP answer.
type reply struct {
	status int
	header http.Header
	media  string
	body   []byte
	gql    gqlResponse
}

type gqlResponse struct {
	Data   map[string]any `json:"data"`
	Errors []gqlErr       `json:"errors"`
}

type gqlErr struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (r reply) code(i int) string {
	if i >= len(r.gql.Errors) {
		return ""
	}
	c, _ := r.gql.Errors[i].Extensions["code"].(string)
	return c
}

func (e *env) do(req *http.Request) reply {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read response: %v", err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: body}
	r.media, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if strings.Contains(r.media, "json") && len(body) > 0 {
		if err := json.Unmarshal(body, &r.gql); err != nil {
			e.t.Fatalf("response is not JSON: %s", body)
		}
	}
	return r
}

// setHeaders sets name, value pairs on req, after a default Accept of
// application/graphql-response+json (what current clients send); an empty
// value removes the header.
func setHeaders(req *http.Request, headers []string) {
	req.Header.Set("Accept", mediaGraphQLResponse)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
}

// post sends a JSON body to /query; headers are name, value pairs.
func (e *env) post(body string, headers ...string) reply {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+"/query", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	setHeaders(req, headers)
	return e.do(req)
}

// query posts a GraphQL query with variables.
func (e *env) query(query string, variables map[string]any, headers ...string) reply {
	e.t.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.post(string(b), headers...)
}

// get sends a GET to path with query parameters.
func (e *env) get(path string, params url.Values, headers ...string) reply {
	e.t.Helper()
	u := e.srv.URL + path
	if params != nil {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	setHeaders(req, headers)
	return e.do(req)
}

// discardLog is for tests that do not read logs.
var discardLog = slog.New(slog.DiscardHandler)
