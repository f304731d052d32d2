package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"livedrops/domain"
)

var (
	secret = []byte("test-secret-of-reasonable-length!")
	t0     = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	alice  = &domain.User{ID: 42, Handle: "alice"}
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// sign makes a token with arbitrary claims and method, for tokens we never issue.
func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

func goodClaims() claims {
	return claims{Handle: "alice", RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: "42",
		IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
	}}
}

func TestParse(t *testing.T) {
	clk := &clock{t0}
	tokens := NewTokens(secret, time.Hour, clk.now)
	valid, exp, err := tokens.Issue(alice)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Add(time.Hour)) {
		t.Fatalf("expiresAt = %v, want %v", exp, t0.Add(time.Hour))
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(*claims)) claims { c := goodClaims(); edit(&c); return c }

	tests := []struct {
		name    string
		token   string
		at      time.Time
		wantID  int64
		wantMsg string // for failures; "" means success
	}{
		{"valid", valid, t0, 42, ""},
		{"valid just before expiry", valid, t0.Add(time.Hour - time.Second), 42, ""},
		{"expired", valid, t0.Add(time.Hour + time.Second), 0, "your session has expired; log in again"},
		{"forged signature", sign(t, jwt.SigningMethodHS256, []byte("another secret"), goodClaims()), t0, 0, "invalid token"},
		{"tampered payload", tamper(t, valid), t0, 0, "invalid token"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims()), t0, 0, "invalid token"},
		{"alg RS256", sign(t, jwt.SigningMethodRS256, rsaKey, goodClaims()), t0, 0, "invalid token"},
		{"alg HS512 with our secret", sign(t, jwt.SigningMethodHS512, secret, goodClaims()), t0, 0, "invalid token"},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, secret, with(func(c *claims) { c.Issuer = "elsewhere" })), t0, 0, "invalid token"},
		{"no expiry", sign(t, jwt.SigningMethodHS256, secret, with(func(c *claims) { c.ExpiresAt = nil })), t0, 0, "invalid token"},
		{"subject not a number", sign(t, jwt.SigningMethodHS256, secret, with(func(c *claims) { c.Subject = "alice" })), t0, 0, "invalid token"},
		{"subject zero", sign(t, jwt.SigningMethodHS256, secret, with(func(c *claims) { c.Subject = "0" })), t0, 0, "invalid token"},
		{"empty", "", t0, 0, "invalid token"},
		{"garbage", "not a token", t0, 0, "invalid token"},
		{"three garbage parts", "a.b.c", t0, 0, "invalid token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.t = tc.at
			v, err := tokens.Parse(context.Background(), tc.token)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if v.UserID != tc.wantID || v.Handle != "alice" {
					t.Fatalf("viewer = %+v", v)
				}
				return
			}
			if v != nil || domain.ErrorCode(err) != domain.Unauthenticated || err.Error() != tc.wantMsg {
				t.Fatalf("Parse = %+v, %v (code %s); want UNAUTHENTICATED %q", v, err, domain.ErrorCode(err), tc.wantMsg)
			}
		})
	}
}

// tamper changes the payload of a token while keeping its signature.
func tamper(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	c := goodClaims()
	c.Subject = "1"
	forged := sign(t, jwt.SigningMethodHS256, []byte("x"), c)
	return parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
}

func TestMiddleware(t *testing.T) {
	tokens := NewTokens(secret, time.Hour, nil)
	valid, _, err := tokens.Issue(alice)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		header   string
		wantCode int
		wantUser int64 // 0: anonymous
	}{
		{"no header", "", http.StatusOK, 0},
		{"valid", "Bearer " + valid, http.StatusOK, 42},
		{"scheme in lower case", "bearer " + valid, http.StatusOK, 42},
		{"forged", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("nope"), goodClaims()), http.StatusUnauthorized, 0},
		{"garbage", "Bearer garbage", http.StatusUnauthorized, 0},
		{"basic auth", "Basic YWxpY2U6cHc=", http.StatusUnauthorized, 0},
		{"bare token", valid, http.StatusUnauthorized, 0},
		{"bearer without token", "Bearer ", http.StatusUnauthorized, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reached bool
			var seen *domain.Viewer
			h := tokens.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached, seen = true, domain.ViewerFrom(r.Context())
			}))
			req := httptest.NewRequest(http.MethodPost, "/query", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("status = %d, want %d", rec.Code, tc.wantCode)
			}
			if tc.wantCode == http.StatusOK {
				if !reached {
					t.Fatal("handler not reached")
				}
				if got := viewerID(seen); got != tc.wantUser {
					t.Fatalf("viewer = %d, want %d", got, tc.wantUser)
				}
				return
			}
			if reached {
				t.Fatal("handler reached despite a bad token")
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q", ct)
			}
			var body struct {
				Errors []struct {
					Message    string
					Extensions struct{ Code string }
				}
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if len(body.Errors) != 1 || body.Errors[0].Extensions.Code != domain.Unauthenticated || body.Errors[0].Message == "" {
				t.Fatalf("body = %s", rec.Body)
			}
		})
	}
}

func viewerID(v *domain.Viewer) int64 {
	if v == nil {
		return 0
	}
	return v.UserID
}

func TestViewerFromAuthorization(t *testing.T) {
	tokens := NewTokens(secret, time.Hour, nil)
	valid, _, err := tokens.Issue(alice)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := tokens.ViewerFromAuthorization(context.Background(), ""); v != nil || err != nil {
		t.Fatalf("empty header = %v, %v; want anonymous", v, err)
	}
	if v, err := tokens.ViewerFromAuthorization(context.Background(), "Bearer "+valid); err != nil || v.UserID != 42 {
		t.Fatalf("valid header = %v, %v", v, err)
	}
	if _, err := tokens.ViewerFromAuthorization(context.Background(), "Bearer x.y.z"); domain.ErrorCode(err) != domain.Unauthenticated {
		t.Fatalf("bad header: %v", err)
	}
}

// A verified token is remembered, so the next request skips decoding it,
// but only until it expires; a refused token is never remembered.
func TestParseRemembersVerifiedTokensUntilTheyExpire(t *testing.T) {
	clk := &clock{t0}
	tokens := NewTokens(secret, time.Hour, clk.now)
	token, _, err := tokens.Issue(alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Parse(context.Background(), tamper(t, token)); err == nil {
		t.Fatal("a tampered token was accepted")
	}
	if tokens.verified.Len() != 0 {
		t.Fatalf("%d tokens remembered after a refusal", tokens.verified.Len())
	}
	for _, at := range []time.Duration{0, time.Hour - time.Second} {
		clk.t = t0.Add(at)
		if v, err := tokens.Parse(context.Background(), token); err != nil || v.UserID != 42 {
			t.Fatalf("at +%s: %+v %v", at, v, err)
		}
	}
	if tokens.verified.Len() != 1 {
		t.Fatalf("%d tokens remembered, want 1", tokens.verified.Len())
	}
	clk.t = t0.Add(time.Hour + time.Second)
	if v, err := tokens.Parse(context.Background(), token); err == nil || err.Error() != "your session has expired; log in again" {
		t.Fatalf("a remembered token after its expiry: %+v %v", v, err)
	}
	if tokens.verified.Len() != 0 {
		t.Fatal("an expired token is still remembered")
	}
}

// lookupFunc is a RevocationLookup from a function.
type lookupFunc func(session string) (bool, error)

func (f lookupFunc) SessionRevoked(_ context.Context, s string) (bool, error) { return f(s) }

// A revoked session is refused though its token is remembered; the lookup
// is asked only about tokens not verified before; a token without a jti is
// revocable by its digest.
func TestParseRefusesRevokedSessions(t *testing.T) {
	clk := &clock{t0}
	tokens := NewTokens(secret, time.Hour, clk.now)
	revoked := NewRevoked(clk.now)
	asked := 0
	shared := map[string]bool{}
	tokens.UseRevocations(revoked, lookupFunc(func(s string) (bool, error) { asked++; return shared[s], nil }))
	ctx := context.Background()

	a, _, _ := tokens.Issue(alice)
	b, _, _ := tokens.Issue(alice)
	va, err := tokens.Parse(ctx, a)
	if err != nil || va.Session == "" || !va.Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Parse = %+v, %v; want a session id and expiry", va, err)
	}
	vb, _ := tokens.Parse(ctx, b)
	if va.Session == vb.Session {
		t.Fatal("two tokens share a session id")
	}
	if _, err := tokens.Parse(ctx, a); err != nil || asked != 2 {
		t.Fatalf("a remembered token: %v, lookups %d; want none more than 2", err, asked)
	}
	revoked.Add(va.Session, va.Expires)
	if _, err := tokens.Parse(ctx, a); domain.ErrorCode(err) != domain.Unauthenticated {
		t.Fatalf("a remembered, revoked token: %v; want UNAUTHENTICATED", err)
	}
	if _, err := tokens.Parse(ctx, b); err != nil {
		t.Fatalf("the other session of the same user: %v", err)
	}

	// Revoked elsewhere, not yet heard here: the lookup says so.
	c, _, _ := tokens.Issue(alice)
	legacy := sign(t, jwt.SigningMethodHS256, secret, goodClaims())
	for _, tok := range []string{c, legacy} {
		var parsed claims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &parsed); err != nil {
			t.Fatal(err)
		}
		shared[sessionID(tok, parsed.ID)] = true
		if _, err := tokens.Parse(ctx, tok); domain.ErrorCode(err) != domain.Unauthenticated {
			t.Fatalf("a token revoked elsewhere: %v; want UNAUTHENTICATED", err)
		}
	}
	if !revoked.Has(sessionID(legacy, "")) {
		t.Fatal("a revocation the lookup found is not remembered here")
	}

	// The lookup failing refuses, but not as a log-out.
	d, _, _ := tokens.Issue(alice)
	tokens.lookup = lookupFunc(func(string) (bool, error) { return false, errors.New("both stores down") })
	if _, err := tokens.Parse(ctx, d); err == nil || domain.ErrorCode(err) == domain.Unauthenticated {
		t.Fatalf("lookup failed: %v; want a refusal other than UNAUTHENTICATED", err)
	}
}

// A session's context ends with SessionEnded when it expires or is revoked.
func TestSessionContext(t *testing.T) {
	tokens := NewTokens(secret, time.Hour, nil)
	revoked := NewRevoked(nil)
	tokens.UseRevocations(revoked, nil)
	v := &domain.Viewer{UserID: 1, Session: "s1", Expires: time.Now().Add(50 * time.Millisecond)}
	ctx := tokens.SessionContext(context.Background(), v)
	<-ctx.Done()
	if _, ok := context.Cause(ctx).(SessionEnded); !ok {
		t.Fatalf("expired: cause %v", context.Cause(ctx))
	}
	v = &domain.Viewer{UserID: 1, Session: "s2", Expires: time.Now().Add(time.Hour)}
	ctx = tokens.SessionContext(context.Background(), v)
	revoked.Add("s2", v.Expires)
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
		t.Fatal("revoked: context still open")
	}
	if context.Cause(ctx) != errSessionRevoked {
		t.Fatalf("revoked: cause %v", context.Cause(ctx))
	}
	parent, cancel := context.WithCancel(context.Background())
	tokens.SessionContext(parent, &domain.Viewer{Session: "s3", Expires: time.Now().Add(time.Hour)})
	cancel()
	time.Sleep(10 * time.Millisecond)
	revoked.mu.RLock()
	defer revoked.mu.RUnlock()
	if len(revoked.watchers) != 0 {
		t.Fatalf("%d watchers left after their contexts ended", len(revoked.watchers))
	}
}

// The cost of a remembered token's check, revocation set included: what
// every authenticated request pays.
func BenchmarkParseRemembered(b *testing.B) {
	tokens := NewTokens(secret, time.Hour, nil)
	revoked := NewRevoked(nil)
	for i := range 10000 {
		revoked.Add(strconv.Itoa(i), time.Now().Add(time.Hour))
	}
	tokens.UseRevocations(revoked, nil)
	token, _, _ := tokens.Issue(alice)
	ctx := context.Background()
	if _, err := tokens.Parse(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.Parse(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}
