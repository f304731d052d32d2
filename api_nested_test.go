package main

// End-to-end tests of nested connections through the real handler: a list
// under a list costs one SQL statement per level whatever the outer list's
// length, and each parent's page is the one it gets when asked alone.

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"livedrops/domain"
	"livedrops/store"
)

const pageInfoFields = `pageInfo { hasNextPage hasPreviousPage startCursor endCursor }`

// nestedCreators is how many creators seedNested makes; the flat-cost checks
// ask for 20 of them and then for 100 (all of them).
const nestedCreators = 40

// seedNested makes nestedCreators creators, the i-th with i%7 products, the
// k-th of them with k%3 drops, and i%8 followers among the other creators'
// users, so every nested list is empty for some parents, shorter than a
// page for some, longer for others. It returns the creators' handles.
func (a *testApp) seedNested(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	users := make([]*domain.User, nestedCreators)
	creators := make([]*domain.Creator, nestedCreators)
	handles := make([]string, nestedCreators)
	for i := range nestedCreators {
		u, _ := a.mustNewUser(t, fmt.Sprintf("nest%02d", i))
		c, err := a.DB.CreateCreator(ctx, u.ID, "Nest "+u.Handle, "")
		if err != nil {
			t.Fatal(err)
		}
		users[i], creators[i], handles[i] = u, c, u.Handle
		for k := range i % 7 {
			p := &domain.Product{CreatorID: c.ID, Title: fmt.Sprintf("Thing %d.%d", i, k), PriceCents: 100, Currency: "USD"}
			if err := a.DB.CreateProduct(ctx, p); err != nil {
				t.Fatal(err)
			}
			for d := range k % 3 {
				start := time.Now().Add(time.Duration(i*10+k+d+1) * time.Hour)
				if _, err := a.DB.CreateDrop(ctx, store.NewDrop{ProductID: p.ID, CreatorID: c.ID, Title: fmt.Sprintf("%s #%d", p.Title, d),
					StartsAt: start, EndsAt: start.Add(time.Hour), Stock: 5, PerUserLimit: 1, ActorID: u.ID}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for i, c := range creators {
		for j := 1; j <= i%8; j++ {
			if _, err := a.DB.Follow(ctx, c.ID, users[(i+j)%nestedCreators].ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return handles
}

// nestedList is one nested connection: the field and its selection as it
// sits under a Creator, and the connection's path below the Creator.
type nestedList struct {
	name  string
	field string // e.g. `products(first: $first, after: $after, last: $last, before: $before) { ... }`
	path  []string
	// levels is how many statements a cold read of creators with it costs.
	levels int64
}

func nestedLists() []nestedList {
	page := `first: $first, after: $after, last: $last, before: $before`
	items := `{ edges { cursor node { id title } } ` + pageInfoFields + ` }`
	people := `{ edges { cursor node { id handle } } ` + pageInfoFields + ` }`
	return []nestedList{
		// The creators, then their products.
		{name: "products", field: `products(` + page + `) ` + items, path: []string{"products"}, levels: 2},
		{name: "drops", field: `drops(` + page + `) ` + items, path: []string{"drops"}, levels: 2},
		{name: "scheduled drops", field: `drops(status: SCHEDULED, ` + page + `) ` + items, path: []string{"drops"}, levels: 2},
		{name: "followers", field: `followers(` + page + `) ` + people, path: []string{"followers"}, levels: 2},
		// The creators, their users, what those follow.
		{name: "following", field: `user { following(` + page + `) ` + people + ` }`, path: []string{"user", "following"}, levels: 3},
	}
}

const pageVars = `$first: Int, $after: String, $last: Int, $before: String`

// Not parallel: the batching proof wants the CPU to itself (see checkFlatCost).
func TestAPINestedConnectionsAreFlat(t *testing.T) {
	app := startApp(t)
	handles := app.seedNested(t)

	for _, l := range nestedLists() {
		q := `query($n: Int!, ` + pageVars + `) { creators(first: $n) { edges { node { handle ` + l.field + ` } } } }`
		app.checkFlatCost(t, l.name, l.levels, q, map[string]any{"n": 20, "first": 5}, map[string]any{"n": 100, "first": 5})
	}
	// Two levels of nesting: creators, products, their drops.
	q := `query($n: Int!) { creators(first: $n) { edges { node { products(first: 5) { edges { node {
		drops(first: 3) { edges { cursor node { id title } } ` + pageInfoFields + ` } } } } } } } }`
	app.checkFlatCost(t, "drops of products", 3, q, map[string]any{"n": 5}, map[string]any{"n": 11})

	// Every creator's page, read in the batch, is the page it gets alone:
	// forwards and backwards, from a cursor of the longest list.
	for _, l := range nestedLists() {
		batched := `query($n: Int!, ` + pageVars + `) { creators(first: $n) { edges { node { handle ` + l.field + ` } } } }`
		alone := `query($h: String!, ` + pageVars + `) { creator(handle: $h) { ` + l.field + ` } }`
		pages := func(vars map[string]any) map[string]json.RawMessage {
			t.Helper()
			var out struct {
				Creators struct {
					Edges []struct{ Node map[string]json.RawMessage }
				}
			}
			app.mustGQL(t, "", batched, vars, &out)
			got := map[string]json.RawMessage{}
			for _, e := range out.Creators.Edges {
				got[decode[string](t, e.Node["handle"])] = dig(t, e.Node, l.path)
			}
			return got
		}
		full := pages(map[string]any{"n": 100, "first": 5})
		var mid string
		for _, raw := range full {
			var c struct{ Edges []struct{ Cursor string } }
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			if n := len(c.Edges); n > 3 && mid == "" {
				mid = c.Edges[n/2].Cursor
			}
		}
		if mid == "" {
			t.Fatalf("%s: no list longer than 3", l.name)
		}
		for _, args := range []map[string]any{
			{"first": 5}, {"last": 2}, {"first": 2, "after": mid}, {"last": 2, "before": mid}, {"first": 0},
		} {
			vars := map[string]any{"n": 100}
			for k, v := range args {
				vars[k] = v
			}
			got := pages(vars)
			if len(got) != nestedCreators {
				t.Fatalf("%s %v: %d creators", l.name, args, len(got))
			}
			for _, h := range handles {
				var out struct{ Creator map[string]json.RawMessage }
				one := map[string]any{"h": h}
				for k, v := range args {
					one[k] = v
				}
				app.mustGQL(t, "", alone, one, &out)
				if want := dig(t, out.Creator, l.path); string(got[h]) != string(want) {
					t.Fatalf("%s %v of %s:\nbatched %s\nalone   %s", l.name, args, h, got[h], want)
				}
			}
		}
	}
}

// dig follows path down from m to a raw JSON value.
func dig(t *testing.T, m map[string]json.RawMessage, path []string) json.RawMessage {
	t.Helper()
	raw := m[path[0]]
	for _, field := range path[1:] {
		var next map[string]json.RawMessage
		if err := json.Unmarshal(raw, &next); err != nil || next[field] == nil {
			t.Fatalf("no %q in %s", field, raw)
		}
		raw = next[field]
	}
	return raw
}

func TestAPINestedBadCursors(t *testing.T) {
	t.Parallel()
	app := startApp(t)
	token, _, u := app.makeCreatorNamed(t, uniqueHandle("maker"))
	app.createProduct(t, token, "Cup")
	for _, l := range nestedLists() {
		q := `query($h: String!, ` + pageVars + `) { creator(handle: $h) { ` + l.field + ` } }`
		app.wantError(t, "", q, map[string]any{"h": u.Handle, "after": "garbage!"}, domain.BadUserInput, "after")
		app.wantError(t, "", q, map[string]any{"h": u.Handle, "last": 2, "before": "Yzl8eHx5"}, domain.BadUserInput, "before")
		app.wantError(t, "", q, map[string]any{"h": u.Handle, "first": 101}, domain.BadUserInput, "first")
	}
	// Under a list, every parent's field says so, and nothing else breaks.
	_, errs := app.gql(t, "", `{ creators(first: 1) { edges { node { handle products(after: "garbage!") { edges { cursor } } } } } }`, nil)
	requireError(t, errs, domain.BadUserInput, "after")
	// The viewer's own lists too.
	for _, field := range []string{"orders", "notifications"} {
		app.wantError(t, token, `{ viewer { `+field+`(before: "garbage!", last: 1) { edges { cursor } } } }`, nil, domain.BadUserInput, "before")
	}
}

// Not parallel: see TestAPINestedConnectionsAreFlat.
func TestAPINodesOfOrdersBatched(t *testing.T) {
	app := startApp(t)
	s := newLiveSale(t, app, 20, 10)
	b := provisionBuyers(t, app, 2)
	buyer, stranger := b[0], b[1]
	ids := make([]string, 8)
	for i := range ids {
		ids[i] = s.mustPlace(t, buyer.token, fmt.Sprint("order-", i), 1).ID
	}
	nodes := `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Order { id status } } }`
	seen := func(token string) (visible, null int) {
		t.Helper()
		var out struct{ Nodes []*saleOrder }
		app.mustGQL(t, token, nodes, map[string]any{"ids": append(ids, domain.GlobalID(domain.TypeOrder, 987654))}, &out)
		for i, n := range out.Nodes {
			switch {
			case n == nil:
				null++
			case n.ID == ids[i]:
				visible++
			default:
				t.Fatalf("node %d is %+v, want %s", i, n, ids[i])
			}
		}
		return visible, null
	}
	// The buyer and the seller see them; others and the unknown id get null.
	for _, tc := range []struct {
		who            string
		token          string
		visible, nulls int
	}{
		{"the buyer", buyer.token, 8, 1},
		{"the seller", s.creatorToken, 8, 1},
		{"another user", stranger.token, 0, 9},
		{"nobody signed in", "", 0, 9},
	} {
		if v, n := seen(tc.token); v != tc.visible || n != tc.nulls {
			t.Fatalf("%s sees %d orders and %d nulls, want %d and %d", tc.who, v, n, tc.visible, tc.nulls)
		}
	}
	// The fewest of several runs: the server's background workers (the relay
	// publishing the orders' events, the sweeper) share the counter.
	few := app.statements(t, 10, nil, buyer.token, nodes, map[string]any{"ids": ids[:2]})
	all := app.statements(t, 10, nil, buyer.token, nodes, map[string]any{"ids": ids})
	if few != 1 || all != 1 {
		t.Fatalf("nodes of 2 orders took %d statements and of 8 took %d; want one each", few, all)
	}
}
