package main

// End-to-end tests of the platform core through the real HTTP handler:
// accounts and sessions, follows, pagination, input checking, media uploads,
// dataloaders and the cache, probes, metrics, error hygiene and shutdown.
// Each test boots its own server (main_test.go) on the real services.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"livedrops/auth"
	"livedrops/config"
	"livedrops/domain"
	"livedrops/internal/testenv"
	"livedrops/store"
)

// --- accounts and sessions ---------------------------------------------------

func TestAPISignUpAndLogIn(t *testing.T) {
	t.Parallel()
	app := startApp(t)

	// Anonymous: viewer is null, not an error.
	var anon struct{ Viewer *struct{ ID string } }
	app.mustGQL(t, "", `{ viewer { id } }`, nil, &anon)
	if anon.Viewer != nil {
		t.Fatalf("anonymous viewer = %+v, want null", anon.Viewer)
	}

	token, userID := app.signUp(t, "Ada_Lovelace")
	var me struct {
		Viewer struct{ ID, Handle, DisplayName string }
	}
	app.mustGQL(t, token, `{ viewer { id handle displayName } }`, nil, &me)
	if me.Viewer.ID != userID || me.Viewer.Handle != "Ada_Lovelace" || me.Viewer.DisplayName != "User Ada_Lovelace" {
		t.Fatalf("viewer after sign-up = %+v (id %s)", me.Viewer, userID)
	}

	logIn := `mutation($h: String!, $p: String!) { logIn(input: {handle: $h, password: $p}) { token expiresAt user { id handle } } }`
	var in struct {
		LogIn struct {
			Token     string
			ExpiresAt time.Time
			User      struct{ ID, Handle string }
		}
	}
	// The handle matches in any letter case.
	app.mustGQL(t, "", logIn, map[string]any{"h": "ada_lovelace", "p": testPassword}, &in)
	if in.LogIn.User.ID != userID || in.LogIn.Token == "" {
		t.Fatalf("logIn = %+v, want user %s", in.LogIn, userID)
	}
	if ttl := time.Until(in.LogIn.ExpiresAt); ttl < app.Config.JWTTTL-time.Minute || ttl > app.Config.JWTTTL+time.Minute {
		t.Fatalf("token expires in %s, want about %s", ttl, app.Config.JWTTTL)
	}
	app.mustGQL(t, in.LogIn.Token, `{ viewer { id handle displayName } }`, nil, &me)
	if me.Viewer.ID != userID {
		t.Fatalf("viewer with the log-in token = %+v", me.Viewer)
	}

	// A wrong password and an unknown handle get the same answer, so it
	// never tells whether an account exists.
	wrong := app.wantError(t, "", logIn, map[string]any{"h": "Ada_Lovelace", "p": "not the password"}, domain.Unauthenticated, "")
	unknown := app.wantError(t, "", logIn, map[string]any{"h": "nobody_here", "p": testPassword}, domain.Unauthenticated, "")
	if wrong.Message != unknown.Message {
		t.Fatalf("wrong password says %q but unknown handle says %q", wrong.Message, unknown.Message)
	}

	// Duplicate handles, also differing only in case.
	signUp := `mutation($h: String!) { signUp(input: {handle: $h, password: "another good password", displayName: "Copy"}) { token } }`
	for _, h := range []string{"Ada_Lovelace", "ADA_LOVELACE", "ada_lovelace"} {
		app.wantError(t, "", signUp, map[string]any{"h": h}, domain.BadUserInput, "handle")
	}
	var count int
	if err := app.DB.Get(&count, `SELECT count(*) FROM users WHERE lower(handle) = 'ada_lovelace'`); err != nil || count != 1 {
		t.Fatalf("users with the handle: %d, %v", count, err)
	}
}

func TestAPIBadTokens(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	u, good := app.mustNewUser(t, "grace")

	forged, _, err := auth.NewTokens([]byte("a-secret-that-is-not-the-servers"), time.Hour, nil).Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	past := func() time.Time { return time.Now().Add(-2 * app.Config.JWTTTL) }
	expired, _, err := app.tokens(past).Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	// alg "none" with the right claims: the signature is all that is missing.
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	claims := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(
		`{"iss":"livedrops","sub":"%d","handle":"grace","exp":%d}`, u.ID, time.Now().Add(time.Hour).Unix())))
	unsigned := header + "." + claims + "."

	var ok struct{ Viewer struct{ Handle string } }
	app.mustGQL(t, good, `{ viewer { handle } }`, nil, &ok)
	if ok.Viewer.Handle != "grace" {
		t.Fatalf("viewer with a good token = %+v", ok.Viewer)
	}

	for name, authz := range map[string]string{
		"forged":   "Bearer " + forged,
		"expired":  "Bearer " + expired,
		"garbage":  "Bearer not-a-token",
		"alg none": "Bearer " + unsigned,
		"scheme":   "Basic " + base64.StdEncoding.EncodeToString([]byte("grace:pw")),
		"empty":    "Bearer ",
	} {
		t.Run(name, func(t *testing.T) {
			req := app.queryRequest(t, `{ viewer { handle } }`, nil)
			req.Header.Set("Authorization", authz)
			resp := app.do(t, req)
			if resp.Status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", resp.Status, resp.Body)
			}
			requireError(t, resp.Errors, domain.Unauthenticated, "")
			if resp.Data != nil && string(resp.Data) != "null" {
				t.Fatalf("a refused request carried data: %s", resp.Data)
			}
		})
	}
	// A mutation with a bad token does nothing either.
	resp, err := app.exec(expired, `mutation { becomeCreator(input: {displayName: "Sneaky"}) { id } }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("mutation with an expired token: status %d", resp.Status)
	}
	var creators int
	if err := app.DB.Get(&creators, `SELECT count(*) FROM creators`); err != nil || creators != 0 {
		t.Fatalf("creators after refused mutation: %d, %v", creators, err)
	}
}

// --- follows -----------------------------------------------------------------

const creatorCounts = `query($h: String!) { creator(handle: $h) { id followerCount viewerFollows followers(first: 100) { edges { node { id } } } } }`

type creatorCount struct {
	Creator struct {
		ID            string
		FollowerCount int
		ViewerFollows bool
		Followers     struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
}

// counts reads a creator's follower count, the followers listed and whether
// token's user follows it, and checks the count matches the list.
func (a *testApp) counts(t *testing.T, token, handle string) creatorCount {
	t.Helper()
	var c creatorCount
	a.mustGQL(t, token, creatorCounts, map[string]any{"h": handle}, &c)
	if c.Creator.FollowerCount != len(c.Creator.Followers.Edges) {
		t.Fatalf("%s: followerCount %d but %d followers listed", handle, c.Creator.FollowerCount, len(c.Creator.Followers.Edges))
	}
	return c
}

func TestAPIFollowConcurrently(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	_, oneID, _ := app.makeCreatorNamed(t, "solo_creator")
	_, manyID, _ := app.makeCreatorNamed(t, "crowd_creator")
	_, fan := app.mustNewUser(t, "fan")
	_, other := app.mustNewUser(t, "bystander")
	followers := make([]string, 40)
	for i := range followers {
		_, followers[i] = app.mustNewUser(t, fmt.Sprintf("follower%02d", i))
	}
	follow := `mutation($id: ID!) { follow(creatorId: $id) { id followerCount viewerFollows } }`
	unfollow := `mutation($id: ID!) { unfollow(creatorId: $id) { id followerCount viewerFollows } }`

	// One user, 40 times at once: one follow.
	app.concurrently(t, 40, func(int) (string, string, map[string]any) {
		return fan, follow, map[string]any{"id": oneID}
	})
	if c := app.counts(t, fan, "solo_creator"); c.Creator.FollowerCount != 1 || !c.Creator.ViewerFollows {
		t.Fatalf("after 40 follows by one user: %+v", c.Creator)
	}
	if c := app.counts(t, other, "solo_creator"); c.Creator.ViewerFollows {
		t.Fatal("viewerFollows is true for a user who does not follow")
	}
	if c := app.counts(t, "", "solo_creator"); c.Creator.ViewerFollows {
		t.Fatal("viewerFollows is true for an anonymous viewer")
	}

	// 40 users at once: 40 follows.
	app.concurrently(t, 40, func(i int) (string, string, map[string]any) {
		return followers[i], follow, map[string]any{"id": manyID}
	})
	if c := app.counts(t, followers[7], "crowd_creator"); c.Creator.FollowerCount != 40 || !c.Creator.ViewerFollows {
		t.Fatalf("after 40 users followed: %+v", c.Creator)
	}
	if c := app.counts(t, fan, "crowd_creator"); c.Creator.ViewerFollows {
		t.Fatal("viewerFollows is true for a user who follows another creator")
	}

	// Following twice more, sequentially, changes nothing; the answer says so.
	var again struct{ Follow struct{ FollowerCount int } }
	app.mustGQL(t, followers[0], follow, map[string]any{"id": manyID}, &again)
	if again.Follow.FollowerCount != 40 {
		t.Fatalf("a repeated follow answered followerCount %d", again.Follow.FollowerCount)
	}

	// And back: unfollows are idempotent too.
	app.concurrently(t, 40, func(int) (string, string, map[string]any) {
		return fan, unfollow, map[string]any{"id": oneID}
	})
	if c := app.counts(t, fan, "solo_creator"); c.Creator.FollowerCount != 0 || c.Creator.ViewerFollows {
		t.Fatalf("after 40 unfollows by one user: %+v", c.Creator)
	}
	app.concurrently(t, 40, func(i int) (string, string, map[string]any) {
		return followers[i], unfollow, map[string]any{"id": manyID}
	})
	if c := app.counts(t, followers[7], "crowd_creator"); c.Creator.FollowerCount != 0 || c.Creator.ViewerFollows {
		t.Fatalf("after 40 users unfollowed: %+v", c.Creator)
	}
	// The stored count agrees with the rows, not only with itself.
	var stored, rows int
	if err := app.DB.Get(&stored, `SELECT sum(follower_count) FROM creators`); err != nil {
		t.Fatal(err)
	}
	if err := app.DB.Get(&rows, `SELECT count(*) FROM follows`); err != nil {
		t.Fatal(err)
	}
	if stored != 0 || rows != 0 {
		t.Fatalf("follower_count sums to %d over %d follows rows, want 0 and 0", stored, rows)
	}
}

func TestAPIFollowRules(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	owner, creatorID, _ := app.makeCreatorNamed(t, "selfish")
	_, fan := app.mustNewUser(t, "fan")
	follow := `mutation($id: ID!) { follow(creatorId: $id) { followerCount } }`

	app.wantError(t, "", follow, map[string]any{"id": creatorID}, domain.Unauthenticated, "")
	app.wantError(t, owner, follow, map[string]any{"id": creatorID}, domain.BadUserInput, "creatorId")

	// The count read through the by-id loader (node, and a product's
	// creator) follows the follow: it is not served stale from Redis.
	product := app.createProduct(t, owner, "Mug")
	read := `query($c: ID!, $p: ID!) {
		node(id: $c) { ... on Creator { followerCount } }
		product(id: $p) { creator { followerCount } }
	}`
	type counts struct {
		Node    struct{ FollowerCount int }
		Product struct{ Creator struct{ FollowerCount int } }
	}
	var before, after counts
	app.mustGQL(t, "", read, map[string]any{"c": creatorID, "p": product}, &before)
	app.mustGQL(t, fan, follow, map[string]any{"id": creatorID}, nil)
	app.mustGQL(t, "", read, map[string]any{"c": creatorID, "p": product}, &after)
	if before.Node.FollowerCount != 0 || after.Node.FollowerCount != 1 || after.Product.Creator.FollowerCount != 1 {
		t.Fatalf("followerCount before %+v, after a follow %+v: want 0 then 1 everywhere", before, after)
	}
}

// --- pagination --------------------------------------------------------------

type pageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}

type connection struct {
	Edges []struct {
		Cursor string
		Node   struct{ ID, Handle string }
	}
	PageInfo pageInfo
}

// connectionQuery reads one connection with first/after/last/before from
// variables; path names the fields from data down to the connection.
type connectionQuery struct {
	token string
	query string
	vars  map[string]any
	path  []string
}

func (a *testApp) page(t *testing.T, q connectionQuery, args map[string]any) connection {
	t.Helper()
	vars := map[string]any{}
	for k, v := range q.vars {
		vars[k] = v
	}
	for k, v := range args {
		vars[k] = v
	}
	data, errs := a.gql(t, q.token, q.query, vars)
	if len(errs) > 0 {
		t.Fatalf("page %v: %s", args, describeErrors(errs))
	}
	raw := data
	for _, field := range q.path {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil || m[field] == nil {
			t.Fatalf("no %q in %s", field, raw)
		}
		raw = m[field]
	}
	return decode[connection](t, raw)
}

// walk reads the whole connection forward with first:n, then backward with
// last:n, checks every pageInfo on the way, and returns the handles both ways.
func (a *testApp) walk(t *testing.T, q connectionQuery, n int) (forward, backward []string) {
	t.Helper()
	checkEnds := func(c connection) {
		t.Helper()
		if len(c.Edges) == 0 {
			if c.PageInfo.StartCursor != nil || c.PageInfo.EndCursor != nil {
				t.Fatalf("an empty page has cursors %+v", c.PageInfo)
			}
			return
		}
		if c.PageInfo.StartCursor == nil || *c.PageInfo.StartCursor != c.Edges[0].Cursor ||
			c.PageInfo.EndCursor == nil || *c.PageInfo.EndCursor != c.Edges[len(c.Edges)-1].Cursor {
			t.Fatalf("startCursor/endCursor %v/%v do not match the edges", c.PageInfo.StartCursor, c.PageInfo.EndCursor)
		}
	}
	var after any
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("forward walk does not end")
		}
		c := a.page(t, q, map[string]any{"first": n, "after": after})
		checkEnds(c)
		if c.PageInfo.HasPreviousPage != (after != nil) {
			t.Fatalf("forward page %d: hasPreviousPage %v", i, c.PageInfo.HasPreviousPage)
		}
		if len(c.Edges) > n || (c.PageInfo.HasNextPage && len(c.Edges) != n) {
			t.Fatalf("forward page %d has %d edges (first %d, hasNextPage %v)", i, len(c.Edges), n, c.PageInfo.HasNextPage)
		}
		for _, e := range c.Edges {
			forward = append(forward, e.Node.Handle)
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		after = *c.PageInfo.EndCursor
	}
	var before any
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("backward walk does not end")
		}
		c := a.page(t, q, map[string]any{"last": n, "before": before})
		checkEnds(c)
		if c.PageInfo.HasNextPage != (before != nil) {
			t.Fatalf("backward page %d: hasNextPage %v", i, c.PageInfo.HasNextPage)
		}
		if len(c.Edges) > n || (c.PageInfo.HasPreviousPage && len(c.Edges) != n) {
			t.Fatalf("backward page %d has %d edges (last %d, hasPreviousPage %v)", i, len(c.Edges), n, c.PageInfo.HasPreviousPage)
		}
		page := make([]string, len(c.Edges))
		for j, e := range c.Edges {
			page[j] = e.Node.Handle
		}
		backward = append(page, backward...)
		if !c.PageInfo.HasPreviousPage {
			break
		}
		before = *c.PageInfo.StartCursor
	}
	return forward, backward
}

// checkWalk walks q with page sizes and compares both directions to want.
func (a *testApp) checkWalk(t *testing.T, name string, q connectionQuery, want []string, sizes ...int) {
	t.Helper()
	for _, n := range sizes {
		forward, backward := a.walk(t, q, n)
		if !slices.Equal(forward, want) {
			t.Fatalf("%s forward by %d: got %d items %v\nwant %d items %v", name, n, len(forward), forward, len(want), want)
		}
		if !slices.Equal(backward, want) {
			t.Fatalf("%s backward by %d: got %d items %v\nwant %v", name, n, len(backward), backward, want)
		}
	}
	// From a cursor in the middle, both ways.
	mid := a.page(t, q, map[string]any{"first": 50})
	cursor := mid.Edges[49].Cursor
	next := a.page(t, q, map[string]any{"first": 10, "after": cursor})
	prev := a.page(t, q, map[string]any{"last": 10, "before": cursor})
	for i := range 10 {
		if next.Edges[i].Node.Handle != want[50+i] || prev.Edges[i].Node.Handle != want[39+i] {
			t.Fatalf("%s around item 49: after %+v, before %+v", name, next.Edges, prev.Edges)
		}
	}
	// A page of none still answers.
	if empty := a.page(t, q, map[string]any{"first": 0}); len(empty.Edges) != 0 || !empty.PageInfo.HasNextPage {
		t.Fatalf("%s first:0 = %+v, want no edges and hasNextPage", name, empty)
	}
}

func TestAPIPagination(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	ctx := context.Background()
	const n = 120

	// 120 creators (oldest first in `creators`), each followed by one fan
	// (most recent first in `following`), and 120 followers of the first
	// creator (most recent first in `followers`).
	fan, fanToken := app.mustNewUser(t, "fan")
	creators := make([]string, n)
	var star *domain.Creator
	for i := range n {
		u, _ := app.mustNewUser(t, fmt.Sprintf("c%03d", i))
		c, err := app.DB.CreateCreator(ctx, u.ID, "Creator "+u.Handle, "")
		if err != nil {
			t.Fatal(err)
		}
		creators[i] = u.Handle
		if i == 0 {
			star = c
		}
		if _, err := app.DB.Follow(ctx, c.ID, fan.ID); err != nil {
			t.Fatal(err)
		}
	}
	followers := make([]string, 0, n+1)
	for i := range n {
		u, _ := app.mustNewUser(t, fmt.Sprintf("f%03d", i))
		if _, err := app.DB.Follow(ctx, star.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		followers = append(followers, u.Handle)
	}
	slices.Reverse(followers)
	followers = append(followers, fan.Handle) // the fan followed before any of them
	following := slices.Clone(creators)
	slices.Reverse(following)

	args := `$first: Int, $after: String, $last: Int, $before: String`
	page := `first: $first, after: $after, last: $last, before: $before`
	app.checkWalk(t, "followers", connectionQuery{
		query: `query($h: String!, ` + args + `) { creator(handle: $h) { followers(` + page + `) {
			edges { cursor node { id handle } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`,
		vars: map[string]any{"h": creators[0]},
		path: []string{"creator", "followers"},
	}, followers, 25, 100)
	app.checkWalk(t, "creators", connectionQuery{
		query: `query(` + args + `) { creators(` + page + `) {
			edges { cursor node { id handle } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
		path: []string{"creators"},
	}, creators, 40, 7)
	app.checkWalk(t, "following", connectionQuery{
		token: fanToken,
		query: `query(` + args + `) { viewer { following(` + page + `) {
			edges { cursor node { id handle } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`,
		path: []string{"viewer", "following"},
	}, following, 33, 100)
}

// --- bad input ---------------------------------------------------------------

func TestAPIBadInput(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	token, creatorID := app.makeCreator(t)
	productID := app.createProduct(t, token, "Lamp")
	_, fan := app.mustNewUser(t, "fan")
	raw := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	long := strings.Repeat("x", 10_000)
	var listed struct{ Creators connection }
	app.mustGQL(t, "", `{ creators(first: 1) { edges { cursor node { id handle } } } }`, nil, &listed)
	var followers struct {
		Creator struct{ Followers connection }
	}
	if _, err := app.DB.Follow(context.Background(), mustKey(t, creatorID), mustNewUserID(t, app, "follower")); err != nil {
		t.Fatal(err)
	}
	app.mustGQL(t, "", `query($h: String!) { creator(handle: $h) { followers(first: 1) { edges { cursor } } } }`,
		map[string]any{"h": listed.Creators.Edges[0].Node.Handle}, &followers)
	foreignCursor := followers.Creator.Followers.Edges[0].Cursor

	node := `query($id: ID!) { node(id: $id) { id } }`
	follow := `mutation($id: ID!) { follow(creatorId: $id) { id } }`
	list := `query($first: Int, $last: Int, $after: String, $before: String) { creators(first: $first, last: $last, after: $after, before: $before) { edges { node { id } } } }`
	signUp := `mutation($h: String!, $p: String!, $d: String!) { signUp(input: {handle: $h, password: $p, displayName: $d}) { token } }`
	product := `mutation($t: String!) { createProduct(input: {title: $t, priceCents: 100, currency: "USD"}) { id } }`
	signUpVars := func(h, p, d string) map[string]any { return map[string]any{"h": h, "p": p, "d": d} }

	for _, tc := range []struct {
		name  string
		token string
		query string
		vars  map[string]any
		code  string // "" : no error, data checked by null
		field string
		null  string // a field of data that must be null
	}{
		{name: "malformed id", query: node, vars: map[string]any{"id": "!!!"}, code: domain.BadUserInput},
		{name: "empty id", query: node, vars: map[string]any{"id": ""}, code: domain.BadUserInput},
		{name: "unknown type", query: node, vars: map[string]any{"id": raw("Spaceship:1")}, code: domain.BadUserInput},
		{name: "zero key", query: node, vars: map[string]any{"id": raw("Product:0")}, code: domain.BadUserInput},
		{name: "leading zero", query: node, vars: map[string]any{"id": raw("Product:01")}, code: domain.BadUserInput},
		{name: "huge key", query: node, vars: map[string]any{"id": raw("Product:99999999999999999999")}, code: domain.BadUserInput},
		{name: "long id", query: node, vars: map[string]any{"id": long}, code: domain.BadUserInput},
		{name: "unknown object is null", query: node, vars: map[string]any{"id": domain.GlobalID(domain.TypeProduct, 987654)}, null: "node"},
		{name: "unknown product is null", query: `query($id: ID!) { product(id: $id) { id } }`, vars: map[string]any{"id": domain.GlobalID(domain.TypeProduct, 987654)}, null: "product"},
		{name: "unknown creator handle is null", query: `{ creator(handle: "nobody") { id } }`, null: "creator"},
		{name: "product id as creator id", token: fan, query: follow, vars: map[string]any{"id": productID}, code: domain.BadUserInput},
		{name: "creator id as product id", query: `query($id: ID!) { product(id: $id) { id } }`, vars: map[string]any{"id": creatorID}, code: domain.BadUserInput},
		{name: "follow unknown creator", token: fan, query: follow, vars: map[string]any{"id": domain.GlobalID(domain.TypeCreator, 987654)}, code: domain.NotFound},
		{name: "update unknown product", token: token, query: `mutation($id: ID!) { updateProduct(input: {id: $id, title: "x"}) { id } }`,
			vars: map[string]any{"id": domain.GlobalID(domain.TypeProduct, 987654)}, code: domain.NotFound},
		{name: "garbage cursor", query: list, vars: map[string]any{"after": "garbage!"}, code: domain.BadUserInput, field: "after"},
		{name: "base64 garbage cursor", query: list, vars: map[string]any{"after": raw("garbage")}, code: domain.BadUserInput, field: "after"},
		{name: "garbage before", query: list, vars: map[string]any{"last": 5, "before": raw("c1|x|y")}, code: domain.BadUserInput, field: "before"},
		{name: "first -1", query: list, vars: map[string]any{"first": -1}, code: domain.BadUserInput, field: "first"},
		{name: "last -1", query: list, vars: map[string]any{"last": -1}, code: domain.BadUserInput, field: "last"},
		{name: "first 100000", query: list, vars: map[string]any{"first": 100000}, code: domain.BadUserInput, field: "first"},
		{name: "first beyond Int", query: list, vars: map[string]any{"first": int64(1) << 40}, code: domain.BadUserInput},
		{name: "first as a string", query: list, vars: map[string]any{"first": "ten"}, code: domain.BadUserInput},
		{name: "first and last", query: list, vars: map[string]any{"first": 5, "last": 5}, code: domain.BadUserInput},
		{name: "nodes over the cap", query: `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`,
			vars: map[string]any{"ids": slices.Repeat([]string{productID}, 101)}, code: domain.BadUserInput},
		{name: "empty handle", query: signUp, vars: signUpVars("", testPassword, "X"), code: domain.BadUserInput, field: "handle"},
		{name: "long handle", query: signUp, vars: signUpVars(long, testPassword, "X"), code: domain.BadUserInput, field: "handle"},
		{name: "handle with spaces", query: signUp, vars: signUpVars("a b c", testPassword, "X"), code: domain.BadUserInput, field: "handle"},
		{name: "short password", query: signUp, vars: signUpVars("shorty", "1234567", "X"), code: domain.BadUserInput, field: "password"},
		{name: "long password", query: signUp, vars: signUpVars("longpw", long, "X"), code: domain.BadUserInput, field: "password"},
		{name: "empty display name", query: signUp, vars: signUpVars("noname", testPassword, "   "), code: domain.BadUserInput, field: "displayName"},
		{name: "long display name", query: signUp, vars: signUpVars("longname", testPassword, long), code: domain.BadUserInput, field: "displayName"},
		{name: "two-line display name", query: signUp, vars: signUpVars("twolines", testPassword, "a\nb"), code: domain.BadUserInput, field: "displayName"},
		{name: "empty title", token: token, query: product, vars: map[string]any{"t": ""}, code: domain.BadUserInput, field: "title"},
		{name: "long title", token: token, query: product, vars: map[string]any{"t": long}, code: domain.BadUserInput, field: "title"},
		{name: "negative price", token: token, query: `mutation { createProduct(input: {title: "t", priceCents: -1, currency: "USD"}) { id } }`, code: domain.BadUserInput, field: "priceCents"},
		{name: "unknown currency", token: token, query: `mutation { createProduct(input: {title: "t", priceCents: 1, currency: "XYZ"}) { id } }`, code: domain.BadUserInput, field: "currency"},
		{name: "not a creator", token: fan, query: product, vars: map[string]any{"t": "Mine"}, code: domain.Forbidden},
		{name: "anonymous mutation", query: product, vars: map[string]any{"t": "Mine"}, code: domain.Unauthenticated},
		{name: "become creator twice", token: token, query: `mutation { becomeCreator(input: {displayName: "Again"}) { id } }`, code: domain.Conflict},
		{name: "bad time", token: token, query: `mutation($p: ID!) { scheduleDrop(input: {productId: $p, startsAt: "tomorrow", endsAt: "2099-01-01T00:00:00Z", stock: 1, perUserLimit: 1}) { id } }`,
			vars: map[string]any{"p": productID}, code: domain.BadUserInput},
		{name: "unknown field", query: `{ creators { nope } }`, code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "parse error", query: `{ creators { `, code: "GRAPHQL_PARSE_FAILED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := app.exec(tc.token, tc.query, tc.vars)
			if err != nil {
				t.Fatal(err)
			}
			if tc.code == "" {
				if len(resp.Errors) > 0 || resp.Status != http.StatusOK {
					t.Fatalf("status %d, errors %s", resp.Status, describeErrors(resp.Errors))
				}
				var data map[string]json.RawMessage
				if err := json.Unmarshal(resp.Data, &data); err != nil || string(data[tc.null]) != "null" {
					t.Fatalf("data = %s, want %s null", resp.Data, tc.null)
				}
				return
			}
			e := requireError(t, resp.Errors, tc.code, tc.field)
			if resp.Status != http.StatusOK && resp.Status != http.StatusBadRequest {
				t.Fatalf("status %d for a %s error", resp.Status, tc.code)
			}
			if len(e.Message) > 300 || strings.Contains(e.Message, long[:100]) {
				t.Fatalf("the message echoes the input: %d bytes", len(e.Message))
			}
		})
	}

	// A well-formed cursor of another list must not break anything: the
	// answer is a page or a BAD_USER_INPUT, never an internal error.
	for _, arg := range []map[string]any{{"after": foreignCursor}, {"last": 3, "before": foreignCursor}} {
		resp, err := app.exec("", list, arg)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Errors) > 0 && resp.Errors[0].Extensions.Code != domain.BadUserInput {
			t.Fatalf("a cursor of another list (%v): %s", arg, describeErrors(resp.Errors))
		}
	}

	// Nothing the table sent reached the database as a new row.
	var users int
	if err := app.DB.Get(&users, `SELECT count(*) FROM users`); err != nil || users != 3 {
		t.Fatalf("users after the bad input: %d, %v (want the 3 fixtures)", users, err)
	}
}

func mustNewUserID(t testing.TB, app *testApp, handle string) int64 {
	t.Helper()
	u, _ := app.mustNewUser(t, handle)
	return u.ID
}

func TestAPIHTTPTransport(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	app.makeCreator(t)
	post := func(contentType string, body []byte) *gqlResponse {
		req, err := http.NewRequest(http.MethodPost, app.URL+"/query", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", "application/json")
		return app.do(t, req)
	}
	get := func(params url.Values) *gqlResponse {
		req, err := http.NewRequest(http.MethodGet, app.URL+"/query?"+params.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return app.do(t, req)
	}
	good := []byte(`{"query":"{ creators(first: 1) { edges { node { handle } } } }"}`)

	if r := post("application/json", good); r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("plain POST: %d %s", r.Status, r.Body)
	}
	if r := post("text/plain", good); r.Status != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain POST: %d %s", r.Status, r.Body)
	}
	if r := post("application/x-www-form-urlencoded", []byte("query=%7B+viewer+%7B+id+%7D+%7D")); r.Status != http.StatusUnsupportedMediaType {
		t.Fatalf("form POST: %d %s", r.Status, r.Body)
	}
	for _, body := range []string{`{"query": "{ viewer { id } }"`, `not json`, `{"query": 42}`, `{"query":"{ viewer { id } }"} trailing`, ``} {
		r := post("application/json", []byte(body))
		if r.Status != http.StatusBadRequest || len(r.Errors) != 1 || r.Errors[0].Extensions.Code != domain.BadUserInput {
			t.Fatalf("malformed body %q: %d %s", body, r.Status, r.Body)
		}
	}

	// GET runs queries, never mutations.
	r := get(url.Values{"query": {`query($n: Int) { creators(first: $n) { edges { node { handle } } } }`}, "variables": {`{"n": 1}`}})
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("query over GET: %d %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET without Accept answered %q, want application/json", ct)
	}
	var listed struct {
		Creators connection
	}
	if err := json.Unmarshal(r.Data, &listed); err != nil || len(listed.Creators.Edges) != 1 {
		t.Fatalf("query over GET: %s, %v", r.Data, err)
	}
	r = get(url.Values{"query": {`mutation { becomeCreator(input: {displayName: "x"}) { id } }`}})
	if r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("mutation over GET: %d %s", r.Status, r.Body)
	}
	req, _ := http.NewRequest(http.MethodPut, app.URL+"/query", bytes.NewReader(good))
	req.Header.Set("Content-Type", "application/json")
	if r := app.do(t, req); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}

	// A body over the limit, with and without a Content-Length.
	huge := []byte(`{"query":"{ viewer { id } }","variables":{"pad":"` + strings.Repeat("a", int(app.Config.MaxBodyBytes)) + `"}}`)
	if r := post("application/json", huge); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d %.200s", r.Status, r.Body)
	}
	req, _ = http.NewRequest(http.MethodPost, app.URL+"/query", io.MultiReader(bytes.NewReader(huge)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1 // chunked: the limit must hold while reading
	if r := app.do(t, req); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized chunked body: %d %.200s", r.Status, r.Body)
	}

	// Validation failures: 400 under the GraphQL media type, 200 under JSON.
	req = app.queryRequest(t, `{ nope }`, nil)
	req.Header.Set("Accept", "application/graphql-response+json")
	if r := app.do(t, req); r.Status != http.StatusBadRequest || len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("validation failure: %d %s", r.Status, r.Body)
	}

	// An Accept naming neither JSON media type is 406.
	req = app.queryRequest(t, `{ viewer { id } }`, nil)
	req.Header.Set("Accept", "text/html")
	if r := app.do(t, req); r.Status != http.StatusNotAcceptable {
		t.Fatalf("Accept: text/html: %d %s", r.Status, r.Body)
	}

	// Introspection works in dev.
	var schema struct {
		Schema struct {
			QueryType struct{ Name string }
			Types     []struct{ Name string }
		} `json:"__schema"`
	}
	app.mustGQL(t, "", `{ __schema { queryType { name } types { name } } }`, nil, &schema)
	if schema.Schema.QueryType.Name != "Query" || !slices.ContainsFunc(schema.Schema.Types, func(t struct{ Name string }) bool { return t.Name == "Creator" }) {
		t.Fatalf("introspection: %+v", schema)
	}
}

func TestAPIQueryLimits(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	token, _ := app.makeCreator(t)
	app.createProduct(t, token, "Kite")

	for _, tc := range []struct{ name, query, code string }{
		// Each level asks for 100: 100^4 paths if it ran.
		{"bomb", `{ creators(first: 100) { edges { node { products(first: 100) { edges { node {
			creator { products(first: 100) { edges { node { creator { products(first: 100) { edges { node { title } } } } } } } } } } } } } } }`, ""},
		{"wide", `{ creators(first: 100) { edges { node { products(first: 100) { edges { node {
			creator { followers(first: 100) { edges { node { handle } } } } } } } } } } }`, "QUERY_TOO_COMPLEX"},
		{"deep", `{ viewer { creator { user { creator { user { creator { user { creator { user { creator { user { creator { user { handle } } } } } } } } } } } } } }`, "QUERY_TOO_DEEP"},
	} {
		name, q := tc.name, tc.query
		before := app.DB.Statements.Load()
		start := time.Now()
		resp, err := app.exec(token, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		if len(resp.Errors) != 1 || (resp.Errors[0].Extensions.Code != "QUERY_TOO_COMPLEX" && resp.Errors[0].Extensions.Code != "QUERY_TOO_DEEP") ||
			(tc.code != "" && resp.Errors[0].Extensions.Code != tc.code) {
			t.Fatalf("%s: %d %s", name, resp.Status, resp.Body)
		}
		if resp.Data != nil && string(resp.Data) != "null" {
			t.Fatalf("%s ran: %s", name, resp.Data)
		}
		// Refused before execution: fast, and (background workers aside) no SQL.
		if elapsed > 2*time.Second {
			t.Fatalf("%s took %s to refuse", name, elapsed)
		}
		if n := app.DB.Statements.Load() - before; n > 20 {
			t.Fatalf("%s sent %d statements before being refused", name, n)
		}
	}
	// A reasonable nest passes.
	app.mustGQL(t, token, `{ creators(first: 10) { edges { node { products(first: 10) { edges { node { title creator { handle } } } } } } } }`, nil, nil)
}

// --- media uploads -----------------------------------------------------------

func TestAPIMediaUpload(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	owner, _ := app.makeCreator(t)
	other, _ := app.makeCreator(t)
	_, fan := app.mustNewUser(t, "fan")
	productID := app.createProduct(t, owner, "Poster")

	content := make([]byte, 64<<10)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	content = append([]byte("\x89PNG\r\n\x1a\n"), content...)
	upload := `mutation($p: ID!, $t: String!, $n: Int!) { createMediaUpload(input: {productId: $p, contentType: $t, byteSize: $n}) {
		uploadUrl method expiresAt headers { name value } media { id url contentType byteSize } } }`
	var out struct {
		CreateMediaUpload struct {
			UploadURL string
			Method    string
			ExpiresAt time.Time
			Headers   []struct{ Name, Value string }
			Media     struct {
				ID, URL, ContentType string
				ByteSize             int
			}
		}
	}
	app.mustGQL(t, owner, upload, map[string]any{"p": productID, "t": "image/png", "n": len(content)}, &out)
	up := out.CreateMediaUpload
	if up.Method != http.MethodPut || up.Media.ContentType != "image/png" || up.Media.ByteSize != len(content) || time.Until(up.ExpiresAt) <= 0 {
		t.Fatalf("upload = %+v", up)
	}

	req, err := http.NewRequest(up.Method, up.UploadURL, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range up.Headers {
		if strings.EqualFold(h.Name, "Content-Length") {
			if h.Value != strconv.Itoa(len(content)) {
				t.Fatalf("Content-Length header %q for %d bytes", h.Value, len(content))
			}
			continue // the client sets it from the body
		}
		req.Header.Set(h.Name, h.Value)
	}
	resp, err := app.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT to the presigned URL: %d %s", resp.StatusCode, body)
	}

	var read struct {
		Product struct {
			Media []struct{ ID, URL, ContentType string }
		}
	}
	app.mustGQL(t, "", `query($p: ID!) { product(id: $p) { media { id url contentType } } }`, map[string]any{"p": productID}, &read)
	if len(read.Product.Media) != 1 || read.Product.Media[0].ID != up.Media.ID || read.Product.Media[0].URL != up.Media.URL {
		t.Fatalf("product media = %+v, want the upload's %+v", read.Product.Media, up.Media)
	}
	got, err := http.Get(read.Product.Media[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if got.StatusCode != http.StatusOK || !bytes.Equal(served, content) {
		t.Fatalf("GET %s: %d, %d bytes (want %d, equal)", read.Product.Media[0].URL, got.StatusCode, len(served), len(content))
	}
	if ct := got.Header.Get("Content-Type"); ct != "image/png" {
		t.Fatalf("served as %q, want image/png", ct)
	}

	vars := func(ct string, n int) map[string]any { return map[string]any{"p": productID, "t": ct, "n": n} }
	app.wantError(t, owner, upload, vars("text/html", 10), domain.BadUserInput, "contentType")
	app.wantError(t, owner, upload, vars("application/x-msdownload", 10), domain.BadUserInput, "contentType")
	app.wantError(t, owner, upload, vars("image/png", 20<<20+1), domain.BadUserInput, "byteSize")
	app.wantError(t, owner, upload, vars("image/png", 0), domain.BadUserInput, "byteSize")
	app.wantError(t, other, upload, vars("image/png", 10), domain.Forbidden, "")
	app.wantError(t, fan, upload, vars("image/png", 10), domain.Forbidden, "")
	app.wantError(t, "", upload, vars("image/png", 10), domain.Unauthenticated, "")
	app.wantError(t, owner, upload, map[string]any{"p": domain.GlobalID(domain.TypeProduct, 987654), "t": "image/png", "n": 10}, domain.NotFound, "")

	// The refusals reserved nothing.
	var media int
	if err := app.DB.Get(&media, `SELECT count(*) FROM media`); err != nil || media != 1 {
		t.Fatalf("media rows: %d, %v", media, err)
	}
}

// --- dataloaders and the cache ----------------------------------------------

// seedDrops makes 50 creators, each with a product and a scheduled drop of
// it, and returns the products' global ids.
func (a *testApp) seedDrops(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	productIDs := make([]string, 50)
	for i := range productIDs {
		u, _ := a.mustNewUser(t, fmt.Sprintf("maker%02d", i))
		c, err := a.DB.CreateCreator(ctx, u.ID, "Maker "+u.Handle, "")
		if err != nil {
			t.Fatal(err)
		}
		p := &domain.Product{CreatorID: c.ID, Title: fmt.Sprintf("Thing %02d", i), PriceCents: 100, Currency: "USD"}
		if err := a.DB.CreateProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
		productIDs[i] = domain.GlobalID(domain.TypeProduct, p.ID)
		start := time.Now().Add(time.Duration(i+1) * time.Hour)
		if _, err := a.DB.CreateDrop(ctx, store.NewDrop{ProductID: p.ID, CreatorID: c.ID, Title: p.Title,
			StartsAt: start, EndsAt: start.Add(time.Hour), Stock: 10, PerUserLimit: 1, ActorID: u.ID}); err != nil {
			t.Fatal(err)
		}
	}
	return productIDs
}

// checkFlatCost runs query with an empty cache, with small and with large
// variables, and checks both cost want SQL statements: the cost does not grow
// with the list. A loader batches what arrives within a few milliseconds
// (loaders.Wait), so on a busy machine under -race one run may split a
// batch in two; the fewest over up to 8 rounds is what the query itself
// costs. When even that stays above want, a split of at most splitSlack
// statements is logged and accepted: N+1 reads cost one statement per item,
// which is 50 here, far beyond it. (loaders' own tests prove the exact count
// with a long wait.)
func (a *testApp) checkFlatCost(t *testing.T, name string, want int64, query string, small, large map[string]any) {
	t.Helper()
	const splitSlack = 3
	cold := func() { a.flushCache(t) }
	fewSmall, fewLarge := int64(-1), int64(-1)
	for round := 0; round < 8 && (fewSmall != want || fewLarge != want); round++ {
		if n := a.statements(t, 1, cold, "", query, small); fewSmall < 0 || n < fewSmall {
			fewSmall = n
		}
		if n := a.statements(t, 1, cold, "", query, large); fewLarge < 0 || n < fewLarge {
			fewLarge = n
		}
	}
	if fewSmall == want && fewLarge == want {
		return
	}
	if fewSmall < want || fewLarge < want || fewSmall > want+splitSlack || fewLarge > want+splitSlack {
		t.Fatalf("%s: the small list took %d statements, the large one %d; want %d each", name, fewSmall, fewLarge, want)
	}
	t.Logf("%s: the small list took %d statements, the large one %d (want %d): batches split on a busy machine", name, fewSmall, fewLarge, want)
}

// Not parallel: the batching proof wants the CPU to itself (see checkFlatCost).
func TestAPIDataloaders(t *testing.T) {
	app := startApp(t)
	ctx := context.Background()
	productIDs := app.seedDrops(t)

	drops := `query($n: Int!) { drops(first: $n) { edges { node { title product { title creator { handle displayName } } creator { handle } } } } }`
	// The list, its products, their creators.
	app.checkFlatCost(t, "drops with products and creators", 3, drops, map[string]any{"n": 5}, map[string]any{"n": 50})
	// Warm: products and creators come from Redis, only the list is read
	// (the response cache, emptied each time, would answer it whole).
	if warm := app.statements(t, 3, app.forgetResponses, "", drops, map[string]any{"n": 50}); warm != 1 {
		t.Fatalf("with a warm cache 50 drops took %d statements, want 1", warm)
	}

	// An update is read fresh by the next request, not stale from Redis.
	owner, err := app.DB.UserByHandle(ctx, "maker07")
	if err != nil {
		t.Fatal(err)
	}
	ownerToken := app.mintToken(t, owner)
	read := `query($id: ID!) { product(id: $id) { title } node(id: $id) { ... on Product { title } } }`
	type titles struct {
		Product struct{ Title string }
		Node    struct{ Title string }
	}
	var before, after titles
	app.mustGQL(t, "", read, map[string]any{"id": productIDs[7]}, &before) // cached now
	if cached := app.statements(t, 2, nil, "", read, map[string]any{"id": productIDs[7]}); cached != 0 {
		t.Fatalf("a cached product read took %d statements", cached)
	}
	app.mustGQL(t, ownerToken, `mutation($id: ID!) { updateProduct(input: {id: $id, title: "Renamed"}) { title } }`,
		map[string]any{"id": productIDs[7]}, nil)
	app.mustGQL(t, "", read, map[string]any{"id": productIDs[7]}, &after)
	if before.Product.Title != "Thing 07" || after.Product.Title != "Renamed" || after.Node.Title != "Renamed" {
		t.Fatalf("titles before %+v, after the update %+v", before, after)
	}
	var listed struct {
		Drops struct {
			Edges []struct {
				Node struct{ Product struct{ Title string } }
			}
		}
	}
	app.mustGQL(t, "", drops, map[string]any{"n": 50}, &listed)
	if got := listed.Drops.Edges[7].Node.Product.Title; got != "Renamed" {
		t.Fatalf("the drop list shows the product as %q", got)
	}
}

// Not parallel: see TestAPIDataloaders.
func TestAPINodesBatched(t *testing.T) {
	app := startApp(t)
	productIDs := app.seedDrops(t)
	nodes := `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Product { title creator { handle } } } }`
	// The products, their creators.
	app.checkFlatCost(t, "nodes with creators", 2, nodes, map[string]any{"ids": productIDs[:5]}, map[string]any{"ids": productIDs})
	var out struct {
		Nodes []struct{ Title string }
	}
	app.mustGQL(t, "", nodes, map[string]any{"ids": []string{productIDs[3], domain.GlobalID(domain.TypeProduct, 987654), productIDs[1]}}, &out)
	if len(out.Nodes) != 3 || out.Nodes[0].Title != "Thing 03" || out.Nodes[1].Title != "" || out.Nodes[2].Title != "Thing 01" {
		t.Fatalf("nodes in the order asked, null for unknown: %+v", out.Nodes)
	}
}

// --- probes, metrics, errors -------------------------------------------------

func TestAPIReadyzFollowsRedis(t *testing.T) {
	t.Parallel()
	redisSrv := testenv.PrivateRedis(t)
	app := startApp(t, func(c *config.Config) { c.RedisURL = redisSrv.URL() })
	token, creatorID := app.makeCreator(t)
	productID := app.createProduct(t, token, "Vase")

	ready := func(want int, name string) func() string {
		return func() string {
			status, body := app.readyz(t)
			if status != want || (name != "" && !strings.Contains(body, `"name":"`+name+`"`)) {
				return fmt.Sprintf("/readyz = %d %s, want %d naming %q", status, body, want, name)
			}
			return ""
		}
	}
	eventually(t, 10*time.Second, ready(http.StatusOK, ""))

	redisSrv.Kill()
	eventually(t, 10*time.Second, ready(http.StatusServiceUnavailable, "redis"))
	if _, body := app.readyz(t); strings.Contains(body, "postgres") || strings.Contains(body, "connection refused") {
		t.Fatalf("/readyz names more than redis, or leaks the cause: %s", body)
	}

	// The cache is an optimisation: reads and writes still work without it.
	read := `query($c: ID!, $p: ID!) { node(id: $c) { ... on Creator { handle } } product(id: $p) { title creator { displayName } } }`
	var out struct {
		Node    struct{ Handle string }
		Product struct {
			Title   string
			Creator struct{ DisplayName string }
		}
	}
	timed := func(name string, run func()) {
		t.Helper()
		start := time.Now()
		run()
		took := time.Since(start)
		t.Logf("%s without Redis took %s", name, took)
		if took > 10*time.Second {
			t.Fatalf("%s without Redis took %s", name, took)
		}
	}
	timed("a read", func() { app.mustGQL(t, "", read, map[string]any{"c": creatorID, "p": productID}, &out) })
	if out.Product.Title != "Vase" || out.Node.Handle == "" || out.Product.Creator.DisplayName == "" {
		t.Fatalf("read without Redis: %+v", out)
	}
	timed("an update", func() {
		app.mustGQL(t, token, `mutation($id: ID!) { updateProduct(input: {id: $id, title: "Urn"}) { title } }`, map[string]any{"id": productID}, nil)
	})
	timed("a read after the update", func() { app.mustGQL(t, "", read, map[string]any{"c": creatorID, "p": productID}, &out) })
	if out.Product.Title != "Urn" {
		t.Fatalf("read after an update without Redis: %+v", out)
	}

	redisSrv.Start()
	eventually(t, 20*time.Second, ready(http.StatusOK, ""))
	// Back to normal: the update made while Redis was away is what is read.
	app.mustGQL(t, "", read, map[string]any{"c": creatorID, "p": productID}, &out)
	app.mustGQL(t, "", read, map[string]any{"c": creatorID, "p": productID}, &out)
	if out.Product.Title != "Urn" {
		t.Fatalf("read after Redis came back: %+v", out)
	}
}

func TestAPIMetricsAndErrorHygiene(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	token, _ := app.makeCreator(t)
	productID := app.createProduct(t, token, "Bell")
	read := `query Bells($p: ID!) { product(id: $p) { title creator { handle } } }`
	app.mustGQL(t, "", read, map[string]any{"p": productID}, nil) // misses
	app.mustGQL(t, "", read, map[string]any{"p": productID}, nil) // hits

	resp, err := app.HTTP.Get(app.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`livedrops_graphql_duration_seconds_bucket{operation="Bells",type="query"`,
		`livedrops_graphql_duration_seconds_count{operation="Bells",type="query"}`,
		`livedrops_cache_hits_total{kind="product"}`,
		`livedrops_cache_misses_total{kind="product"}`,
		`livedrops_http_requests_total{route="/query",status="200"}`,
		"livedrops_sql_statements_total ",
	} {
		if !bytes.Contains(metricsText, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A database failure: the client learns nothing of it, the log does.
	if _, err := app.DB.Exec(`ALTER TABLE products RENAME TO products_elsewhere`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = app.DB.Exec(`ALTER TABLE products_elsewhere RENAME TO products`) })
	app.flushCache(t)
	req := app.queryRequest(t, read, map[string]any{"p": productID})
	req.Header.Set("X-Request-Id", "hygiene-check-1")
	r := app.do(t, req)
	if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != domain.Internal {
		t.Fatalf("query on a broken database: %d %s", r.Status, r.Body)
	}
	for _, secret := range []string{"products", "relation", "pq", "sql", "does not exist", "SELECT", ".go"} {
		if bytes.Contains(bytes.ToLower(r.Body), []byte(strings.ToLower(secret))) {
			t.Fatalf("the answer leaks %q: %s", secret, r.Body)
		}
	}
	if r.Header.Get("X-Request-Id") != "hygiene-check-1" {
		t.Fatalf("request id echoed as %q", r.Header.Get("X-Request-Id"))
	}
	eventually(t, 5*time.Second, func() string {
		for _, line := range strings.Split(app.Logs.String(), "\n") {
			if strings.Contains(line, "hygiene-check-1") && strings.Contains(line, "products") && strings.Contains(line, `"level":"ERROR"`) {
				return ""
			}
		}
		return "no error log line with the request id and the cause"
	})
	// A mutation on the broken table too.
	r2, err := app.exec(token, `mutation { createProduct(input: {title: "Gong", priceCents: 1, currency: "USD"}) { id } }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.Errors) != 1 || r2.Errors[0].Extensions.Code != domain.Internal || r2.Errors[0].Message != "internal error" {
		t.Fatalf("mutation on a broken database: %s", r2.Body)
	}
}

// Profiling answers on PPROF_ADDR's own listener, and never on the public one.
func TestAPIProfiling(t *testing.T) {
	t.Parallel()
	app := startApp(t, func(c *config.Config) { c.PprofAddr = "127.0.0.1:0" })
	addr := app.App.PprofAddr()
	if addr == "" || addr == strings.TrimPrefix(app.URL, "http://") {
		t.Fatalf("profiling listener %q, public %s", addr, app.URL)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap"} {
		resp, err := app.HTTP.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("GET %s: %d, %d bytes", path, resp.StatusCode, len(body))
		}
	}
	resp, err := app.HTTP.Get(app.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("the public listener serves /debug/pprof/")
	}

	off := startApp(t)
	if off.App.PprofAddr() != "" {
		t.Fatalf("profiling on without PPROF_ADDR: %s", off.App.PprofAddr())
	}
}

// --- shutdown ----------------------------------------------------------------

func TestAPIGracefulShutdown(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	_, creatorID, _ := app.makeCreatorNamed(t, "busy")
	_, fan := app.mustNewUser(t, "fan")

	// Hold the creator's row so the follow waits inside its transaction (its
	// insert takes a key-share lock on the row through the foreign key).
	lock, err := app.DB.BeginTx(context.Background(), &sql.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.Exec(`SELECT 1 FROM creators WHERE id = $1 FOR UPDATE`, mustKey(t, creatorID)); err != nil {
		t.Fatal(err)
	}
	type result struct {
		resp *gqlResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := app.exec(fan, `mutation($id: ID!) { follow(creatorId: $id) { followerCount } }`, map[string]any{"id": creatorID})
		done <- result{resp, err}
	}()
	eventually(t, 10*time.Second, func() string {
		var waiting int
		if err := app.DB.Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event IN ('transactionid', 'tuple')`); err != nil {
			return err.Error()
		}
		if waiting == 0 {
			return "the follow is not waiting on the lock"
		}
		return ""
	})

	stopped := make(chan struct{})
	go func() { app.stop(); close(stopped) }()
	// Shutting down: no new connections, the one in flight still running.
	eventually(t, 5*time.Second, func() string {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(app.URL, "http://"), time.Second)
		if err == nil {
			conn.Close()
			return "the server still accepts connections"
		}
		return ""
	})
	select {
	case <-stopped:
		t.Fatal("Serve returned while a request was in flight")
	case r := <-done:
		t.Fatalf("the request finished while its row was locked: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}

	if err := lock.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.resp.Status != http.StatusOK || len(r.resp.Errors) > 0 || !strings.Contains(string(r.resp.Data), `"followerCount":1`) {
		t.Fatalf("the request in flight: %v %+v", r.err, r.resp)
	}
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after the last request finished")
	}
}
