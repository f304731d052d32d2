package main

// Limits where abuse costs the service: log-ins and sign-ups per client
// address and per handle, mutation cost per request, persisted queries,
// the listener's timeouts and caps.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"livedrops/config"
	"livedrops/domain"
	"livedrops/httpapi"
	"livedrops/internal/testenv"
)

const logInMutation = `mutation($in: LogInInput!) { logIn(input: $in) { token } }`

// logIn tries a log-in and returns the error's code and retryAfter ("" and 0
// for a success).
func (a *testApp) logIn(t testing.TB, handle, password string) (code string, retryAfter float64) {
	t.Helper()
	_, errs := a.gql(t, "", logInMutation, map[string]any{"in": map[string]any{"handle": handle, "password": password}})
	if len(errs) == 0 {
		return "", 0
	}
	retry, _ := errs[0].Extensions.All["retryAfter"].(float64)
	return errs[0].Extensions.Code, retry
}

func TestAPIAliasedLogInsRefusedBeforeAnyRuns(t *testing.T) {
	app := startApp(t)
	handle := uniqueHandle("alias")
	app.signUp(t, handle)

	var b strings.Builder
	b.WriteString("mutation {")
	for i := range 30 {
		fmt.Fprintf(&b, " a%d: logIn(input: {handle: %q, password: \"wrong password %d\"}) { token }", i, handle, i)
	}
	b.WriteString(" }")
	start := time.Now()
	resp, err := app.exec("", b.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions.Code != httpapi.CodeTooManyMutations || resp.Data != nil {
		t.Fatalf("30 aliased logIns answered %d %s", resp.Status, resp.Body)
	}
	// Refused before any ran: no hash (0.1 s each), no failure counted.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusal took %s", d)
	}
	if code, _ := app.logIn(t, handle, testPassword); code != "" {
		t.Fatalf("log-in after the refused request: %s; want a session (no failure counted)", code)
	}

	// Through fragments too, and a password hash costs the whole budget.
	for name, q := range map[string]string{
		"two logIns":         `mutation { a: logIn(input: {handle: "x", password: "long enough"}) { token } b: logIn(input: {handle: "y", password: "long enough"}) { token } }`,
		"fragments":          `mutation { ...F ...F } fragment F on Mutation { logIn(input: {handle: "x", password: "long enough"}) { token } }`,
		"signUp and a write": `mutation { signUp(input: {handle: "zed123", password: "long enough", displayName: "Z"}) { token } markNotificationsRead }`,
		"six writes":         `mutation { a: markNotificationsRead b: markNotificationsRead c: markNotificationsRead d: markNotificationsRead e: markNotificationsRead f: markNotificationsRead }`,
	} {
		_, errs := app.gql(t, "", q, nil)
		if len(errs) != 1 || errs[0].Extensions.Code != httpapi.CodeTooManyMutations {
			t.Errorf("%s: errors %s; want %s", name, describeErrors(errs), httpapi.CodeTooManyMutations)
		}
	}
	// Five cheap ones pass the limit (and fail on their own: no viewer).
	_, errs := app.gql(t, "", `mutation { a: markNotificationsRead b: markNotificationsRead c: markNotificationsRead d: markNotificationsRead e: markNotificationsRead }`, nil)
	for _, e := range errs {
		if e.Extensions.Code != domain.Unauthenticated {
			t.Errorf("five writes: %s", describeErrors(errs))
		}
	}
}

func TestAPILogInLockout(t *testing.T) {
	// The limit per address (TestAPILogInPerAddress) out of the way.
	app := startApp(t, func(c *config.Config) { c.LogInRatePerAddress = 1000 })
	handle := uniqueHandle("locked")
	app.signUp(t, handle)
	nobody := uniqueHandle("nobody")

	// A handle nobody has locks like a real one: the answers say nothing more.
	for _, h := range []string{handle, nobody} {
		for i := range 12 {
			code, retry := app.logIn(t, h, fmt.Sprintf("wrong password %d", i))
			switch {
			case i < 5 && code != domain.Unauthenticated:
				t.Fatalf("%s: failure %d answered %s; want %s", h, i+1, code, domain.Unauthenticated)
			case i >= 5 && (code != domain.RateLimited || retry < 50 || retry > 60):
				t.Fatalf("%s: failure %d answered %s retryAfter %v; want %s with about 60", h, i+1, code, retry, domain.RateLimited)
			}
		}
	}
	// Locked: the right password is refused too, without being checked.
	if code, _ := app.logIn(t, handle, testPassword); code != domain.RateLimited {
		t.Fatalf("right password while locked answered %q; want %s", code, domain.RateLimited)
	}

	// Each failure after a lock doubles it: let the first lock end, fail once more.
	lockKey := app.Config.RedisPrefix + "login-tries:{" + handle + "}:lock"
	if err := app.App.Redis.Del(context.Background(), lockKey).Err(); err != nil {
		t.Fatal(err)
	}
	if code, _ := app.logIn(t, handle, "wrong again"); code != domain.Unauthenticated {
		t.Fatalf("failure after the lock ended answered %s", code)
	}
	if code, retry := app.logIn(t, handle, "wrong again"); code != domain.RateLimited || retry < 110 || retry > 120 {
		t.Fatalf("next attempt answered %s retryAfter %v; want %s with about 120", code, retry, domain.RateLimited)
	}

	// A success clears the count.
	if err := app.App.Redis.Del(context.Background(), lockKey).Err(); err != nil {
		t.Fatal(err)
	}
	if code, _ := app.logIn(t, handle, testPassword); code != "" {
		t.Fatalf("right password after the lock answered %s", code)
	}
	for i := range 5 {
		if code, _ := app.logIn(t, handle, "wrong"+fmt.Sprint(i)); code != domain.Unauthenticated {
			t.Fatalf("failure %d after a success answered %s", i+1, code)
		}
	}

	// Tries at the same moment are counted before any is checked: no more
	// than the free ones get to a password check.
	burst := uniqueHandle("burst")
	codes := make(chan string, 20)
	var wg sync.WaitGroup
	for i := range cap(codes) {
		wg.Go(func() {
			resp, err := app.exec("", logInMutation, map[string]any{"in": map[string]any{"handle": burst, "password": fmt.Sprintf("wrong password %d", i)}})
			if err != nil || len(resp.Errors) == 0 {
				codes <- fmt.Sprint("no error: ", err)
				return
			}
			codes <- resp.Errors[0].Extensions.Code
		})
	}
	wg.Wait()
	close(codes)
	count := map[string]int{}
	for c := range codes {
		count[c]++
	}
	if count[domain.Unauthenticated] != 5 || count[domain.RateLimited] != 15 {
		t.Fatalf("20 log-ins at once answered %v; want 5 %s and 15 %s", count, domain.Unauthenticated, domain.RateLimited)
	}
}

func TestAPILogInPerAddress(t *testing.T) {
	app := startApp(t, func(c *config.Config) { c.LogInRatePerAddress = 3 })
	for i := range 4 {
		code, retry := app.logIn(t, uniqueHandle("spray"), "some password")
		if want := map[bool]string{true: domain.Unauthenticated, false: domain.RateLimited}[i < 3]; code != want || (code == domain.RateLimited && retry < 1) {
			t.Fatalf("log-in %d from one address answered %s retryAfter %v; want %s", i+1, code, retry, want)
		}
	}
}

// signUpFrom signs up over a request carrying X-Forwarded-For xff ("" none)
// and returns the error code ("" for a success).
func (a *testApp) signUpFrom(t *testing.T, xff string) (code string, retryAfter float64) {
	t.Helper()
	h := uniqueHandle("from")
	req := a.queryRequest(t, `mutation($in: SignUpInput!) { signUp(input: $in) { token } }`,
		map[string]any{"in": map[string]any{"handle": h, "password": testPassword, "displayName": h}})
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp := a.do(t, req)
	if len(resp.Errors) == 0 {
		return "", 0
	}
	retry, _ := resp.Errors[0].Extensions.All["retryAfter"].(float64)
	return resp.Errors[0].Extensions.Code, retry
}

func TestAPISignUpPerAddress(t *testing.T) {
	t.Run("untrusted peer", func(t *testing.T) {
		app := startApp(t, func(c *config.Config) { c.SignUpRatePerAddress = 2 })
		// X-Forwarded-For from a peer that is no trusted proxy proves nothing.
		for i, want := range []string{"", "", domain.RateLimited} {
			code, retry := app.signUpFrom(t, fmt.Sprintf("203.0.113.%d", i+1))
			if code != want || (want != "" && retry < 1) {
				t.Fatalf("sign-up %d answered %q retryAfter %v; want %q", i+1, code, retry, want)
			}
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		app := startApp(t, func(c *config.Config) {
			c.SignUpRatePerAddress = 2
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		// Each client behind the proxy has its own allowance; what the client
		// wrote left of the proxy's entry does not count.
		for i, tc := range []struct{ xff, want string }{
			{"198.51.100.7", ""},
			{"198.51.100.7", ""},
			{"198.51.100.7", domain.RateLimited},
			{"10.9.9.9, 198.51.100.7", domain.RateLimited},
			{"198.51.100.8", ""},
		} {
			if code, _ := app.signUpFrom(t, tc.xff); code != tc.want {
				t.Fatalf("sign-up %d (X-Forwarded-For %s) answered %q; want %q", i+1, tc.xff, code, tc.want)
			}
		}
	})
}

func TestAPIPersistedQueriesStoreOnlyValidDocuments(t *testing.T) {
	app := startApp(t, func(c *config.Config) { c.APQMaxBytes = 1024 })
	ctx := context.Background()
	stored := func(query string) bool {
		sum := sha256.Sum256([]byte(query))
		n, err := app.App.Redis.Exists(ctx, app.Config.RedisPrefix+"apq:"+hex.EncodeToString(sum[:])).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	send := func(query string) *gqlResponse {
		sum := sha256.Sum256([]byte(query))
		req := app.queryRequest(t, "", nil)
		body := fmt.Sprintf(`{"query":%q,"extensions":{"persistedQuery":{"version":1,"sha256Hash":%q}}}`, query, hex.EncodeToString(sum[:]))
		req.Body = io.NopCloser(strings.NewReader(body))
		req.ContentLength = int64(len(body))
		return app.do(t, req)
	}
	for name, q := range map[string]string{
		"unparsable":            strings.Repeat("}{ not graphql ", 200),
		"invalid":               `{ noSuchField }`,
		"too deep":              `{ creators { edges { node { products { edges { node { creator { products { edges { node { creator { handle } } } } } } } } } } } }`,
		"over the cap":          "{ __typename }\n# " + strings.Repeat("x", 1100),
		"a mutation too costly": `mutation { a: logIn(input: {handle: "x", password: "long enough"}) { token } b: logIn(input: {handle: "x", password: "long enough"}) { token } }`,
	} {
		send(q)
		if stored(q) {
			t.Errorf("%s: stored", name)
		}
	}
	if resp := send("{ __typename }\n# " + strings.Repeat("x", 1100)); len(resp.Errors) > 0 {
		t.Errorf("a document over the cap does not run: %s", resp.Body)
	}
	const good = `{ __typename }`
	if resp := send(good); len(resp.Errors) > 0 || !stored(good) {
		t.Fatalf("a valid document: %s, stored %v", resp.Body, stored(good))
	}
}

// rawConn dials the app and returns the connection with a reader.
func (a *testApp) rawConn(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(a.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// closedWithin reads whatever c still sends and reports how long until the
// server closed it, failing past limit.
func closedWithin(t *testing.T, c net.Conn, r *bufio.Reader, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, r)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %s", limit)
	}
	return time.Since(start)
}

func TestAPIListenerTimeouts(t *testing.T) {
	app := startApp(t, func(c *config.Config) {
		c.IdleTimeout = 300 * time.Millisecond
		c.ReadTimeout = 300 * time.Millisecond
	})

	t.Run("idle keep-alive closed", func(t *testing.T) {
		c, r := app.rawConn(t)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("healthz answered %d, close %v", resp.StatusCode, resp.Close)
		}
		if d := closedWithin(t, c, r, 5*time.Second); d < 200*time.Millisecond {
			t.Errorf("closed after %s, before the idle timeout", d)
		}
	})

	t.Run("slow body cut", func(t *testing.T) {
		c, r := app.rawConn(t)
		fmt.Fprintf(c, "POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
		closedWithin(t, c, r, 5*time.Second)
	})

	t.Run("SSE outlives the body deadline", func(t *testing.T) {
		_, token := app.mustNewUser(t, uniqueHandle("sse"))
		s := app.sseSubscribe(t, token, `subscription { notificationAdded { kind } }`, nil)
		s.quiet(t, time.Second)
	})

	t.Run("WebSocket outlives the body deadline", func(t *testing.T) {
		ws := app.wsHandshake(t, "graphql-transport-ws", "")
		defer ws.Close()
		time.Sleep(time.Second)
		if err := ws.WriteJSON(wsMessage{Type: "ping"}); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m wsMessage
		if err := ws.ReadJSON(&m); err != nil || m.Type != "pong" {
			t.Fatalf("after 1s: %v %+v; want a pong", err, m)
		}
	})
}

func TestAPIWebSocketsPerAddress(t *testing.T) {
	app := startApp(t, func(c *config.Config) { c.WebSocketsPerAddress = 2 })
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 5 * time.Second}
	var open []*websocket.Conn
	defer func() {
		for _, ws := range open {
			ws.Close()
		}
	}()
	for range 2 {
		ws, resp, err := d.Dial(app.wsURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		open = append(open, ws)
	}
	_, resp, err := d.Dial(app.wsURL(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third WebSocket from one address: %v %v; want 429", err, resp)
	}
	resp.Body.Close()
	// A closed socket frees its place.
	open[0].Close()
	open = open[1:]
	eventually(t, 5*time.Second, func() string {
		ws, resp, err := d.Dial(app.wsURL(), nil)
		if err != nil {
			return "third WebSocket after one closed: " + err.Error()
		}
		resp.Body.Close()
		open = append(open, ws)
		return ""
	})
}

func TestAPIOrdersPerAddress(t *testing.T) {
	app := startApp(t, func(c *config.Config) { c.OrderRatePerAddress = 3 })
	s := newLiveSale(t, app, 20, 10)
	b := provisionBuyers(t, app, 4)
	for i := range 3 {
		s.mustPlace(t, b[i].token, "from-one-address", 1)
	}
	// A fourth buyer from the same address is over its limit, and took nothing.
	e := s.wantPlaceError(t, b[3].token, "from-one-address", domain.RateLimited)
	if retry, _ := e.Extensions.All["retryAfter"].(float64); retry < 1 {
		t.Fatalf("RATE_LIMITED extensions %v, want retryAfter", e.Extensions.All)
	}
	s.wantStock(t, 17, 3, 0)
}

// Without Redis the limits let requests through: logging in still works.
func TestAPILogInWithoutRedis(t *testing.T) {
	redisSrv := testenv.PrivateRedis(t)
	app := startApp(t, func(c *config.Config) { c.RedisURL = redisSrv.URL() })
	handle := uniqueHandle("noredis")
	app.signUp(t, handle)
	redisSrv.Kill()

	start := time.Now()
	if code, _ := app.logIn(t, handle, "wrong password"); code != domain.Unauthenticated {
		t.Fatalf("wrong password without Redis answered %s", code)
	}
	if code, _ := app.logIn(t, handle, testPassword); code != "" {
		t.Fatalf("right password without Redis answered %s", code)
	}
	if _, errs := app.gql(t, "", `mutation($in: SignUpInput!) { signUp(input: $in) { token } }`,
		map[string]any{"in": map[string]any{"handle": uniqueHandle("noredis"), "password": testPassword, "displayName": "N"}}); len(errs) > 0 {
		t.Fatalf("signUp without Redis: %s", describeErrors(errs))
	}
	d := time.Since(start)
	t.Logf("three calls without Redis took %s", d)
	if d > 10*time.Second {
		t.Fatalf("three calls without Redis took %s", d)
	}
}

func TestAPIConnectionCap(t *testing.T) {
	app := startApp(t, func(c *config.Config) { c.MaxConnections = 2 })
	get := func(c net.Conn, r *bufio.Reader, within time.Duration) error {
		_ = c.SetDeadline(time.Now().Add(within))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	// The harness's client may hold idle connections of its own: let them go.
	app.HTTP.CloseIdleConnections()
	var held []net.Conn
	for range 2 {
		c, r := app.rawConn(t)
		if err := get(c, r, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// A third waits to be accepted, its request unanswered…
	c, r := app.rawConn(t)
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(r, nil); err == nil {
		t.Fatal("a third connection was served past MAX_CONNECTIONS=2")
	}
	// … until one of the others closes.
	held[0].Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("the waiting connection after one closed: %v", err)
	}
	resp.Body.Close()
}
