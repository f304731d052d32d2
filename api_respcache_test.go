package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"livedrops/domain"
)

// Whole responses of public queries are cached, viewer-dependent ones never;
// Cache-Control follows the cache hints; events evict.

// gqlWith POSTs like exec and returns the whole answer, headers included.
func (a *testApp) gqlWith(t testing.TB, token, query string, vars map[string]any) *gqlResponse {
	t.Helper()
	resp, err := a.exec(token, query, vars)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK || len(resp.Errors) > 0 {
		t.Fatalf("%s: status %d, errors %s", query, resp.Status, describeErrors(resp.Errors))
	}
	return resp
}

func TestAPIResponseCachePrivacy(t *testing.T) {
	app := startApp(t)
	creatorToken, creatorID := app.makeCreator(t)
	var creator struct{ Node struct{ Handle string } }
	app.mustGQL(t, "", `query($id: ID!) { node(id: $id) { ... on Creator { handle } } }`, map[string]any{"id": creatorID}, &creator)
	_, tokenA := app.mustNewUser(t, uniqueHandle("viewa"))
	_, tokenB := app.mustNewUser(t, uniqueHandle("viewb"))
	app.mustGQL(t, tokenA, `mutation($id: ID!) { follow(creatorId: $id) { id } }`, map[string]any{"id": creatorID}, nil)
	product := app.createProduct(t, creatorToken, "Print")
	drop := app.scheduleLiveDrop(t, creatorToken, product, 10)
	app.dropMutation(t, creatorToken, "startDrop", drop)
	if resp, err := app.placeOne(tokenA, drop, "privacy-1"); err != nil || len(resp.Errors) > 0 {
		t.Fatalf("order: %v %+v", err, resp)
	}

	const doc = `query($h: String!) {
		creator(handle: $h) { handle followerCount viewerFollows }
		viewer { handle orders(first: 5) { edges { node { id } } } notifications(first: 5) { edges { node { id } } } }
	}`
	type answer struct {
		Creator struct {
			ViewerFollows bool
		}
		Viewer struct {
			Handle string
			Orders struct {
				Edges []struct{ Node struct{ ID string } }
			}
			Notifications struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	vars := map[string]any{"h": creator.Node.Handle}
	// The notifier writes A's notifications (drop scheduled, drop started) in its own time.
	eventually(t, 10*time.Second, func() string {
		var a answer
		app.mustGQL(t, tokenA, doc, vars, &a)
		if len(a.Viewer.Notifications.Edges) < 2 {
			return "viewer A has not both notifications yet"
		}
		return ""
	})
	for round := range 2 {
		for _, v := range []struct {
			token                  string
			follows                bool
			orders, notificationsN int
		}{{tokenA, true, 1, 2}, {tokenB, false, 0, 0}, {"", false, -1, -1}} {
			resp := app.gqlWith(t, v.token, doc, vars)
			var a answer
			if err := json.Unmarshal(resp.Data, &a); err != nil {
				t.Fatal(err)
			}
			if a.Creator.ViewerFollows != v.follows {
				t.Fatalf("round %d: viewerFollows = %v, want %v", round, a.Creator.ViewerFollows, v.follows)
			}
			if v.orders >= 0 && (len(a.Viewer.Orders.Edges) != v.orders || len(a.Viewer.Notifications.Edges) != v.notificationsN) {
				t.Fatalf("round %d: %d orders and %d notifications, want %d and %d",
					round, len(a.Viewer.Orders.Edges), len(a.Viewer.Notifications.Edges), v.orders, v.notificationsN)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("round %d: Cache-Control %q, want no-store", round, cc)
			}
		}
	}
	// The viewer alone is private, cacheable by the viewer's own cache only.
	resp := app.gqlWith(t, tokenA, `{ viewer { handle displayName } }`, nil)
	if cc := resp.Header.Get("Cache-Control"); cc != "private, max-age=60" {
		t.Fatalf("viewer: Cache-Control %q", cc)
	}
	if n := app.App.Responses.Len(); n != 0 {
		t.Fatalf("the shared cache holds %d responses; none of these may be shared", n)
	}
	// A public document asked with a token may be answered from the cache.
	pub := `query($h: String!) { creator(handle: $h) { handle displayName } }`
	app.gqlWith(t, tokenA, pub, vars)
	if n := app.statements(t, 3, nil, tokenB, pub, vars); n != 0 {
		t.Fatalf("a public document asked again took %d statements", n)
	}
}

func TestAPIResponseCacheServesAndEvicts(t *testing.T) {
	app := startApp(t)
	_, _, drop := app.startLiveDrop(t, 10)
	_, buyer := app.mustNewUser(t, uniqueHandle("buyer"))
	const page = `query($id: ID!) { drop(id: $id) { title status stock { available } product { title } creator { handle } } }`
	vars := map[string]any{"id": drop}
	type pageData struct {
		Drop struct{ Stock struct{ Available int } }
	}

	// Stock's hint is 2 s: fill and read again well within it, or retry.
	var filled time.Time
	for attempt := 0; ; attempt++ {
		filled = time.Now()
		resp := app.gqlWith(t, "", page, vars)
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=2" {
			t.Fatalf("Cache-Control %q, want public, max-age=2 (the stock's hint)", cc)
		}
		n := app.statements(t, 2, nil, "", page, vars)
		if n == 0 && time.Since(filled) < 500*time.Millisecond {
			break
		}
		if attempt == 3 {
			t.Fatalf("the page asked again took %d statements", n)
		}
		time.Sleep(2 * time.Second)
	}

	// An order changes the stock: its event evicts the page on every
	// instance, long before the 2 s are over.
	if resp, err := app.placeOne(buyer, drop, "evict-1"); err != nil || len(resp.Errors) > 0 {
		t.Fatalf("order: %v %+v", err, resp)
	}
	ordered := time.Now()
	for {
		var p pageData
		app.mustGQL(t, "", page, vars, &p)
		if p.Drop.Stock.Available == 9 {
			break
		}
		if time.Since(filled) > 1900*time.Millisecond {
			t.Fatalf("the page still shows %d available %s after the order: not evicted", p.Drop.Stock.Available, time.Since(ordered))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("the new stock was served %s after the order was answered", time.Since(ordered).Round(time.Millisecond))

	// A replayed (old) event only costs a miss: the page stays right.
	old, _ := json.Marshal(domain.StockPayload{DropID: mustKey(t, drop), Available: 10, Total: 10, Version: 1, Status: domain.DropLive})
	if err := app.App.Responses.Handle(context.Background(), domain.Event{ID: "replayed", Type: domain.EventStockChanged, Payload: old}); err != nil {
		t.Fatal(err)
	}
	var p pageData
	app.mustGQL(t, "", page, vars, &p)
	if p.Drop.Stock.Available != 9 {
		t.Fatalf("after a replayed event the page shows %d available", p.Drop.Stock.Available)
	}
}

func TestAPICacheControlAndETags(t *testing.T) {
	app := startApp(t)
	_, creatorID := app.makeCreator(t)
	const q = `query($id: ID!) { node(id: $id) { id } creators(first: 2) { edges { node { handle } } } }`
	const pub = `{ creators(first: 2) { edges { node { handle followerCount } } } }`
	_, token := app.mustNewUser(t, uniqueHandle("cc"))
	for _, tt := range []struct {
		name, token, query, want string
		vars                     map[string]any
	}{
		{"public: the smallest maxAge", "", pub, "public, max-age=10", nil},
		{"node may be an order: no-store", "", q, "no-store", map[string]any{"id": creatorID}},
		{"mutation", token, `mutation($id: ID!) { follow(creatorId: $id) { id } }`, "no-store", map[string]any{"id": creatorID}},
	} {
		resp, err := app.exec(tt.token, tt.query, tt.vars)
		if err != nil {
			t.Fatal(err)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != tt.want {
			t.Errorf("%s: Cache-Control %q, want %q (%s)", tt.name, cc, tt.want, resp.Body)
		}
	}
	// Errors are never stored.
	resp, _ := app.exec("", `{ nope }`, nil)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("validation failure: Cache-Control %q", cc)
	}

	// A persisted query over GET: ETag, then 304 for a client that has it.
	query := `{ creators(first: 3) { edges { node { handle displayName } } } }`
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])
	ext := fmt.Sprintf(`{"persistedQuery":{"version":1,"sha256Hash":"%s"}}`, hash)
	register, _ := json.Marshal(gqlRequest{Query: query, Extensions: map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}})
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/query", strings.NewReader(string(register)))
	req.Header.Set("Content-Type", "application/json")
	if r := app.do(t, req); r.Status != 200 || len(r.Errors) > 0 {
		t.Fatalf("registering the persisted query: %d %s", r.Status, r.Body)
	}
	get := func(ifNoneMatch string) *gqlResponse {
		req, _ := http.NewRequest(http.MethodGet, app.URL+"/query?extensions="+url.QueryEscape(ext), nil)
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		return app.do(t, req)
	}
	first := get("")
	etag := first.Header.Get("ETag")
	if first.Status != 200 || etag == "" || first.Header.Get("Cache-Control") != "public, max-age=60" || len(first.Errors) > 0 {
		t.Fatalf("GET of a persisted query: %d ETag %q Cache-Control %q %s", first.Status, etag, first.Header.Get("Cache-Control"), first.Body)
	}
	if !strings.HasPrefix(first.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("no Accept: Content-Type %q, want application/json", first.Header.Get("Content-Type"))
	}
	same := get(etag)
	if same.Status != http.StatusNotModified || len(same.Body) != 0 || same.Header.Get("ETag") != etag {
		t.Fatalf("If-None-Match with the ETag: %d ETag %q body %q", same.Status, same.Header.Get("ETag"), same.Body)
	}
	if other := get(`"something-else"`); other.Status != 200 || other.Header.Get("ETag") != etag {
		t.Fatalf("If-None-Match with another tag: %d %q", other.Status, other.Header.Get("ETag"))
	}
}

func TestAPIResponseCacheMissingCreatorAppears(t *testing.T) {
	app := startApp(t)
	handle := uniqueHandle("soon")
	u, token := app.mustNewUser(t, handle)
	const q = `query($h: String!) { creator(handle: $h) { handle } user: creator(handle: $h) { user { creator { handle } } } }`
	vars := map[string]any{"h": u.Handle}
	for range 2 { // the second from the cache
		if data, errs := app.gql(t, "", q, vars); len(errs) > 0 || string(data) != `{"creator":null,"user":null}` {
			t.Fatalf("before: %s %s", data, describeErrors(errs))
		}
	}
	app.mustGQL(t, token, `mutation { becomeCreator(input: {displayName: "Soon"}) { id } }`, nil, nil)
	var out struct{ Creator struct{ Handle string } }
	app.mustGQL(t, "", q, vars, &out)
	if out.Creator.Handle != handle {
		t.Fatalf("the new creator is not served after becomeCreator: %+v", out)
	}
}
