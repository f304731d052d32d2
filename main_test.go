package main

// The end-to-end harness: a real App (server.go) serving on a free loopback
// port, wired to the real PostgreSQL, Redis, Kafka and S3 that `make
// services` runs, each test with a database, Redis prefix, topic and bucket
// of its own (internal/testenv). Tests talk to it over HTTP like any client.
// Booting one costs about 0.7 s under -race, so every test gets its own; its
// PostgreSQL pool is testenv's DB_MAX_CONNS (small), changed by an option.
//
//	app := startApp(t)                          // stopped in t.Cleanup
//	token, userID := app.signUp(t, "ada")       // the signUp mutation (argon2: slow)
//	u, token := app.mustNewUser(t, "bob")       // straight in the database, fast
//	token, creatorID := app.makeCreator(t)      // a new user made creator by mutation
//	productID := app.createProduct(t, token, "Mug")
//	var out struct{ Viewer struct{ Handle string } }
//	app.mustGQL(t, token, `{ viewer { handle } }`, nil, &out)
//	app.wantError(t, token, query, vars, domain.BadUserInput, "title")
//
// Other tools: startApp's options change the config before boot; gql returns
// data and errors; exec and send return the whole answer (status, headers)
// and are safe from any goroutine (gql, mustGQL and do stop the test, so
// call them from its goroutine); concurrently fires n operations at once;
// statements counts the SQL one operation sends; flushCache empties the
// app's Redis keys; eventually polls a condition (testenv.PrivateRedis
// runs a redis-server of the test's own); stop shuts the server down gracefully
// before the cleanup does; Logs holds the server's log lines.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"livedrops/auth"
	"livedrops/config"
	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/logging"
	"livedrops/store"
)

// testPassword is the password of every account the harness signs up.
const testPassword = "correct horse battery staple"

// testApp is one running server and what a test needs to talk to it.
type testApp struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234 (no slash);
	// InternalURL the operators' listener's (/internal/, /metrics, pprof).
	URL         string
	InternalURL string
	// App is the running application; DB is App.DB, for fixtures and the
	// statement counter.
	App    *App
	DB     *store.DB
	Config *config.Config
	// Logs holds every log line the server wrote (JSON, level from the
	// config: warn unless an option changes it); printed when a test fails.
	Logs *logBuffer
	// HTTP is the client every helper uses: its own pool, so concurrent tests
	// do not share connections.
	HTTP *http.Client

	cancel   context.CancelFunc
	served   chan error
	stopOnce sync.Once
	stopErr  error
}

// startApp boots the real App on a free port with a testenv configuration
// (opts may change it first), serves it in a goroutine, waits until /healthz
// answers, and stops it when the test ends: cancel, wait for Serve to
// return, Close.
func startApp(t testing.TB, opts ...func(*config.Config)) *testApp {
	t.Helper()
	cfg := testenv.Config(t)
	for _, o := range opts {
		o(cfg)
	}
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := NewApp(ctx, cfg, logging.New(cfg.LogLevel, logs))
	if err != nil {
		cancel()
		t.Fatalf("start app: %v\nlogs:\n%s", err, logs)
	}
	if err := app.Listen(); err != nil {
		cancel()
		app.Close()
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx) }()

	ta := &testApp{
		cancel:      cancel,
		served:      served,
		URL:         "http://" + app.Addr(),
		InternalURL: "http://" + app.InternalAddr(),
		App:         app,
		DB:          app.DB,
		Config:      cfg,
		Logs:        logs,
		HTTP: &http.Client{
			Timeout: 30 * time.Second,
			// Enough idle connections for the concurrent tests to reuse them.
			Transport: &http.Transport{MaxIdleConns: 100, MaxIdleConnsPerHost: 100, IdleConnTimeout: 30 * time.Second},
		},
	}
	t.Cleanup(func() {
		if err := ta.stop(); err != nil {
			t.Error(err)
		}
		app.Close()
		ta.HTTP.CloseIdleConnections()
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})
	ta.waitHealthy(t, served)
	return ta
}

// stop ends Serve's context and waits for Serve to return (a graceful
// shutdown: requests in flight finish first). Only the first call stops; every
// call returns what Serve did. Close is left to the cleanup.
func (a *testApp) stop() error {
	a.stopOnce.Do(func() {
		a.cancel()
		select {
		case err := <-a.served:
			if err != nil {
				a.stopErr = fmt.Errorf("Serve returned %w", err)
			}
		case <-time.After(30 * time.Second):
			a.stopErr = fmt.Errorf("Serve did not return within 30s of its context ending")
		}
	})
	return a.stopErr
}

// waitHealthy polls /healthz until it answers 200, failing early if Serve
// stopped.
func (a *testApp) waitHealthy(t testing.TB, served <-chan error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := a.HTTP.Get(a.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-served:
			t.Fatalf("Serve returned %v before /healthz answered", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 15s (last error %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gqlError is one entry of a GraphQL response's errors.
type gqlError struct {
	Message    string        `json:"message"`
	Path       []any         `json:"path"`
	Extensions gqlExtensions `json:"extensions"`
}

// gqlExtensions are an error's extensions: the code and field every error of
// this API may carry, and the rest as sent.
type gqlExtensions struct {
	Code  string
	Field string
	All   map[string]any
}

func (e *gqlExtensions) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &e.All); err != nil {
		return err
	}
	e.Code, _ = e.All["code"].(string)
	e.Field, _ = e.All["field"].(string)
	return nil
}

// gqlResponse is a whole HTTP answer of /query.
type gqlResponse struct {
	Status int
	Header http.Header
	Body   []byte
	// Data and Errors are decoded when the body is JSON; Data is nil when
	// absent and "null" when null.
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// gqlRequest is the JSON body of a GraphQL POST.
type gqlRequest struct {
	Query         string         `json:"query,omitempty"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
	Extensions    map[string]any `json:"extensions,omitempty"`
}

// exec POSTs a GraphQL request with a bearer token ("" for none) and returns
// the answer whatever its status. Safe from any goroutine.
func (a *testApp) exec(token, query string, vars map[string]any) (*gqlResponse, error) {
	body, err := json.Marshal(gqlRequest{Query: query, Variables: vars})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequest(http.MethodPost, a.URL+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return a.send(req)
}

// send sends any request and reads the answer, decoding a JSON body.
func (a *testApp) send(req *http.Request) (*gqlResponse, error) {
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	out := &gqlResponse{Status: resp.StatusCode, Header: resp.Header}
	if out.Body, err = io.ReadAll(resp.Body); err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") {
		if err := json.Unmarshal(out.Body, out); err != nil {
			return nil, fmt.Errorf("%s %s: %d answer is not GraphQL JSON: %w: %s", req.Method, req.URL.Path, resp.StatusCode, err, out.Body)
		}
	}
	return out, nil
}

// do is send for the test's goroutine: a transport failure stops the test.
func (a *testApp) do(t testing.TB, req *http.Request) *gqlResponse {
	t.Helper()
	resp, err := a.send(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// gql runs one operation and returns its data and errors. A transport
// failure or a body that is not GraphQL JSON stops the test.
func (a *testApp) gql(t testing.TB, token, query string, vars map[string]any) (json.RawMessage, []gqlError) {
	t.Helper()
	resp, err := a.exec(token, query, vars)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Data == nil && resp.Errors == nil {
		t.Fatalf("answer %d without data or errors: %s", resp.Status, resp.Body)
	}
	return resp.Data, resp.Errors
}

// mustGQL runs one operation that must succeed and decodes its data into out
// (nil: discard).
func (a *testApp) mustGQL(t testing.TB, token, query string, vars map[string]any, out any) {
	t.Helper()
	data, errs := a.gql(t, token, query, vars)
	if len(errs) > 0 {
		t.Fatalf("unexpected errors %s\nquery: %s\nvariables: %v", describeErrors(errs), query, vars)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("decode data %s: %v", data, err)
		}
	}
}

// wantError runs one operation that must fail with exactly one error of code
// (and, when field is not empty, that extensions.field), and returns it.
func (a *testApp) wantError(t testing.TB, token, query string, vars map[string]any, code, field string) gqlError {
	t.Helper()
	_, errs := a.gql(t, token, query, vars)
	return requireError(t, errs, code, field)
}

// requireError checks errs is exactly one error of code (and field, if given).
func requireError(t testing.TB, errs []gqlError, code, field string) gqlError {
	t.Helper()
	if len(errs) != 1 || errs[0].Extensions.Code != code || (field != "" && errs[0].Extensions.Field != field) {
		t.Fatalf("errors = %s, want one %s (field %q)", describeErrors(errs), code, field)
	}
	return errs[0]
}

// describeErrors prints errors compactly for failure messages.
func describeErrors(errs []gqlError) string {
	if len(errs) == 0 {
		return "none"
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = fmt.Sprintf("[%s field=%q path=%v: %s]", e.Extensions.Code, e.Extensions.Field, e.Path, e.Message)
	}
	return strings.Join(parts, " ")
}

// decode unmarshals raw JSON into a T, stopping the test on failure.
func decode[T any](t testing.TB, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// handleSeq numbers the handles uniqueHandle makes, unique in the process.
var handleSeq atomic.Int64

// uniqueHandle returns prefix plus a number no other call returned.
func uniqueHandle(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, handleSeq.Add(1))
}

// signUp creates an account through the signUp mutation (argon2: slow on
// purpose; use newUser for many users) and returns its token and global id.
func (a *testApp) signUp(t testing.TB, handle string) (token, userID string) {
	t.Helper()
	var out struct {
		SignUp struct {
			Token string
			User  struct{ ID string }
		}
	}
	a.mustGQL(t, "", `mutation($in: SignUpInput!) { signUp(input: $in) { token user { id } } }`,
		map[string]any{"in": map[string]any{"handle": handle, "password": testPassword, "displayName": "User " + handle}}, &out)
	if out.SignUp.Token == "" || out.SignUp.User.ID == "" {
		t.Fatalf("signUp %s answered %+v", handle, out)
	}
	return out.SignUp.Token, out.SignUp.User.ID
}

// tokens signs like the server: its secret and TTL; now nil is the real clock.
func (a *testApp) tokens(now func() time.Time) *auth.Tokens {
	return auth.NewTokens([]byte(a.Config.JWTSecret), a.Config.JWTTTL, now)
}

// mintToken returns a session token for u, as logging in would.
func (a *testApp) mintToken(t testing.TB, u *domain.User) string {
	t.Helper()
	token, _, err := a.tokens(nil).Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// newUser creates a user straight in the database (a dummy password hash:
// it cannot log in) and returns it with a token. Safe from any goroutine.
func (a *testApp) newUser(handle string) (*domain.User, string, error) {
	u, err := a.DB.CreateUser(context.Background(), handle, "User "+handle, "not-a-password-hash")
	if err != nil {
		return nil, "", fmt.Errorf("create user %s: %w", handle, err)
	}
	token, _, err := a.tokens(nil).Issue(u)
	if err != nil {
		return nil, "", err
	}
	return u, token, nil
}

// mustNewUser is newUser for the test's goroutine.
func (a *testApp) mustNewUser(t testing.TB, handle string) (*domain.User, string) {
	t.Helper()
	u, token, err := a.newUser(handle)
	if err != nil {
		t.Fatal(err)
	}
	return u, token
}

// makeCreator makes a new user a creator through the becomeCreator mutation
// and returns the user's token and the creator's global id.
func (a *testApp) makeCreator(t testing.TB) (token, creatorID string) {
	t.Helper()
	token, creatorID, _ = a.makeCreatorNamed(t, uniqueHandle("creator"))
	return token, creatorID
}

// makeCreatorNamed is makeCreator with a chosen handle, returning the user too.
func (a *testApp) makeCreatorNamed(t testing.TB, handle string) (token, creatorID string, u *domain.User) {
	t.Helper()
	u, token = a.mustNewUser(t, handle)
	var out struct{ BecomeCreator struct{ ID string } }
	a.mustGQL(t, token, `mutation($in: BecomeCreatorInput!) { becomeCreator(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"displayName": "Creator " + handle, "bio": "Makes things."}}, &out)
	return token, out.BecomeCreator.ID, u
}

// createProduct creates a product of the token's creator and returns its id.
func (a *testApp) createProduct(t testing.TB, token, title string) string {
	t.Helper()
	var out struct{ CreateProduct struct{ ID string } }
	a.mustGQL(t, token, `mutation($in: CreateProductInput!) { createProduct(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"title": title, "description": "A " + title, "priceCents": 2500, "currency": "USD"}}, &out)
	return out.CreateProduct.ID
}

// queryRequest builds a POST of a GraphQL request with no token.
func (a *testApp) queryRequest(t testing.TB, query string, vars map[string]any) *http.Request {
	t.Helper()
	body, err := json.Marshal(gqlRequest{Query: query, Variables: vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, a.URL+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return req
}

// concurrently runs n GraphQL operations at once and fails on any error.
func (a *testApp) concurrently(t testing.TB, n int, op func(i int) (token, query string, vars map[string]any)) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]string, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			token, query, vars := op(i)
			<-start
			resp, err := a.exec(token, query, vars)
			switch {
			case err != nil:
				errs[i] = err.Error()
			case resp.Status != http.StatusOK || len(resp.Errors) > 0:
				errs[i] = fmt.Sprintf("status %d: %s", resp.Status, describeErrors(resp.Errors))
			}
		})
	}
	close(start)
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Fatalf("operation %d of %d failed: %s", i, n, e)
		}
	}
}

// mustKey returns the database key of a global id.
func mustKey(t testing.TB, gid string) int64 {
	t.Helper()
	_, id, err := domain.ParseGlobalID(gid)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// flushCache deletes every Redis key of this app and empties its response
// cache, so the next read is cold.
func (a *testApp) flushCache(t testing.TB) {
	t.Helper()
	a.forgetResponses()
	ctx := context.Background()
	if a.App.Near != nil {
		a.App.Near.Clear()
	}
	keys, err := a.App.Redis.Keys(ctx, a.Config.RedisPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := a.App.Redis.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// forgetResponses empties the response cache, so the next query executes.
func (a *testApp) forgetResponses() {
	if a.App.Responses != nil {
		a.App.Responses.EvictAll()
	}
}

// statements returns the fewest SQL statements one operation sent over a few
// runs (before each, prepare runs, e.g. to empty the cache). The server's
// background workers share the counter; the fewest is the operation's own.
func (a *testApp) statements(t testing.TB, runs int, prepare func(), token, query string, vars map[string]any) int64 {
	t.Helper()
	fewest := int64(-1)
	for range runs {
		if prepare != nil {
			prepare()
		}
		before := a.DB.Statements.Load()
		a.mustGQL(t, token, query, vars, nil)
		if n := a.DB.Statements.Load() - before; fewest < 0 || n < fewest {
			fewest = n
		}
	}
	return fewest
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// readyz returns /readyz's status and body.
func (a *testApp) readyz(t testing.TB) (int, string) {
	t.Helper()
	resp, err := a.HTTP.Get(a.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// eventually polls check until it returns "" or the deadline passes.
func eventually(t testing.TB, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logBuffer collects the server's log lines from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
