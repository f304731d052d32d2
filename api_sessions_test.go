package main

// Sessions end: logOut revokes a token on every instance, and a WebSocket
// closes (4401) when its session expires or is revoked.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"livedrops/config"
	"livedrops/domain"
)

const (
	logOutMutation = `mutation { logOut }`
	viewerQuery    = `{ viewer { handle } }`
)

// sharing is an option making an instance share a's database, Redis,
// topic and bucket: a second instance of the same deployment.
func sharing(a *testApp) func(*config.Config) {
	return func(c *config.Config) {
		c.DatabaseURL, c.RedisPrefix, c.KafkaTopic = a.Config.DatabaseURL, a.Config.RedisPrefix, a.Config.KafkaTopic
		c.S3Bucket, c.MediaBaseURL = a.Config.S3Bucket, a.Config.MediaBaseURL
	}
}

// viewerStatus is the HTTP status and error code of a viewer query with token.
func (a *testApp) viewerStatus(t testing.TB, token string) (int, string) {
	t.Helper()
	resp, err := a.exec(token, viewerQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	code := ""
	if len(resp.Errors) > 0 {
		code = resp.Errors[0].Extensions.Code
	}
	return resp.Status, code
}

func TestAPILogOutRevokesOnEveryInstance(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	b := startApp(t, sharing(a))
	_, cached := a.mustNewUser(t, uniqueHandle("leaver"))
	u, _ := a.mustNewUser(t, uniqueHandle("other"))
	fresh, _, err := a.tokens(nil).Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := a.tokens(nil).Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	// B verifies (and remembers) cached before it is revoked; fresh it never saw.
	for _, tok := range []string{cached, fresh, other} {
		a.mustGQL(t, tok, viewerQuery, nil, nil)
	}
	b.mustGQL(t, cached, viewerQuery, nil, nil)

	for _, tok := range []string{cached, fresh} {
		var out struct{ LogOut bool }
		a.mustGQL(t, tok, logOutMutation, nil, &out)
		if !out.LogOut {
			t.Fatal("logOut = false for a signed-in viewer")
		}
		if status, code := a.viewerStatus(t, tok); status != http.StatusUnauthorized || code != domain.Unauthenticated {
			t.Fatalf("instance A after logOut: %d %s; want 401 UNAUTHENTICATED", status, code)
		}
	}
	// A token B has not seen: its first use asks Redis, at once.
	if status, code := b.viewerStatus(t, fresh); status != http.StatusUnauthorized || code != domain.Unauthenticated {
		t.Fatalf("instance B, a revoked token it never saw: %d %s; want 401 UNAUTHENTICATED", status, code)
	}
	// A token B remembers: the SessionRevoked event reaches it.
	eventually(t, 15*time.Second, func() string {
		if status, code := b.viewerStatus(t, cached); status != http.StatusUnauthorized || code != domain.Unauthenticated {
			return "instance B still accepts a revoked token it had verified"
		}
		return ""
	})
	// The same user's other session goes on, on both.
	a.mustGQL(t, other, viewerQuery, nil, nil)
	b.mustGQL(t, other, viewerQuery, nil, nil)

	// A third instance started afterwards loads the revocations, Redis or not.
	c := startApp(t, sharing(a))
	flushPrefix(t, c)
	if status, _ := c.viewerStatus(t, cached); status != http.StatusUnauthorized {
		t.Fatalf("an instance started after logOut: %d; want 401", status)
	}
}

// flushPrefix deletes the app's own Redis keys (never the shared Redis whole).
func flushPrefix(t testing.TB, a *testApp) {
	t.Helper()
	ctx := context.Background()
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

// Logging out twice, or without a session, is harmless: the second call is
// refused like any use of the ended token, and nothing is written twice.
func TestAPILogOutTwice(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	_, token := a.mustNewUser(t, uniqueHandle("twice"))
	var out struct{ LogOut bool }
	a.mustGQL(t, token, logOutMutation, nil, &out)
	resp, err := a.exec(token, logOutMutation, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusUnauthorized || len(resp.Errors) != 1 || resp.Errors[0].Extensions.Code != domain.Unauthenticated {
		t.Fatalf("second logOut: %d %s; want 401 UNAUTHENTICATED", resp.Status, resp.Body)
	}
	a.mustGQL(t, "", logOutMutation, nil, &out)
	if out.LogOut {
		t.Fatal("anonymous logOut = true")
	}
	var rows, events int
	if err := a.DB.GetContext(context.Background(), &rows, `SELECT count(*) FROM revoked_tokens`); err != nil {
		t.Fatal(err)
	}
	if err := a.DB.GetContext(context.Background(), &events, `SELECT count(*) FROM outbox WHERE type = $1`, domain.EventSessionRevoked); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || events != 1 {
		t.Fatalf("%d revoked_tokens rows and %d SessionRevoked events; want 1 and 1", rows, events)
	}
}

// wsClosedWith waits for ws to be closed by the server and returns the code.
func wsClosedWith(t testing.TB, ws *websocket.Conn, within time.Duration) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(within))
	for {
		var m wsMessage
		err := ws.ReadJSON(&m)
		if err == nil {
			if m.Type == "ping" {
				_ = ws.WriteJSON(wsMessage{Type: "pong"})
			}
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		t.Fatalf("WebSocket not closed with a code: %v", err)
	}
}

func TestLiveWebSocketClosedWhenSessionEnds(t *testing.T) {
	t.Parallel()
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		a := startApp(t, func(c *config.Config) { c.JWTTTL = 2 * time.Second })
		for _, proto := range []string{protoTransportWS, protoLegacyWS} {
			_, token := a.mustNewUser(t, uniqueHandle("brief"))
			start := time.Now()
			ws := a.wsHandshake(t, proto, token)
			code, reason := wsClosedWith(t, ws, 10*time.Second)
			ws.Close()
			if code != 4401 || !strings.Contains(reason, "expired") {
				t.Fatalf("%s: closed with %d %q; want 4401 and a reason naming the expiry", proto, code, reason)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("%s: closed %s after connecting; the token lived at most 2s", proto, d)
			}
		}
	})
	t.Run("SSE stream expired", func(t *testing.T) {
		t.Parallel()
		a := startApp(t, func(c *config.Config) { c.JWTTTL = 2 * time.Second })
		_, token := a.mustNewUser(t, uniqueHandle("sse"))
		s := a.sseSubscribe(t, token, `subscription { notificationAdded { id } }`, nil)
		s.ended(t)
	})
	t.Run("revoked on another instance", func(t *testing.T) {
		t.Parallel()
		a := startApp(t)
		b := startApp(t, sharing(a))
		_, token := a.mustNewUser(t, uniqueHandle("watcher"))
		ws := b.wsHandshake(t, protoTransportWS, token)
		defer ws.Close()
		a.mustGQL(t, token, logOutMutation, nil, nil)
		if code, reason := wsClosedWith(t, ws, 15*time.Second); code != 4401 || !strings.Contains(reason, "ended") {
			t.Fatalf("closed with %d %q; want 4401 and a reason saying the session ended", code, reason)
		}
	})
}
