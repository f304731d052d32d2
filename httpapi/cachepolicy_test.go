package httpapi

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"

	"livedrops/graph"
)

func TestCachePolicyOfTheSchema(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	policies := newCachePolicies(schema)
	for _, tt := range []struct {
		name, query, want string
	}{
		{"catalog", `{ creator(handle: "a") { handle displayName bio products(first: 5) { edges { node { title priceCents media { url } } } pageInfo { hasNextPage } } } }`, "public, max-age=60"},
		{"a drop page: stock is the shortest", `query($id: ID!) { drop(id: $id) { title status stock { available } product { title } } }`, "public, max-age=2"},
		{"status", `query($id: ID!) { drop(id: $id) { title status } }`, "public, max-age=5"},
		{"lists of drops", `{ liveDrops(first: 3) { edges { node { title } } } }`, "public, max-age=5"},
		{"follower counts", `{ creators(first: 3) { edges { cursor node { handle followerCount } } } }`, "public, max-age=10"},
		{"through a fragment", `{ creators { ...C } } fragment C on CreatorConnection { edges { node { viewerFollows } } }`, "no-store"},
		{"the viewer", `{ viewer { handle } }`, "private, max-age=60"},
		{"the viewer's orders", `{ viewer { orders(first: 1) { edges { node { id } } } } }`, "no-store"},
		{"viewer-dependent field", `{ creator(handle: "a") { viewerFollows } }`, "no-store"},
		{"node may be an order", `query($id: ID!) { node(id: $id) { ... on Drop { title } } }`, "no-store"},
		{"root __typename", `{ __typename }`, "no-store"},
		{"nested __typename", `{ creator(handle: "a") { __typename handle } }`, "public, max-age=60"},
		{"introspection", `{ __schema { queryType { name } } }`, "no-store"},
		{"mutation", `mutation { markNotificationsRead }`, "no-store"},
	} {
		doc, err := gqlparser.LoadQuery(schema, tt.query)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := policies.of(doc, doc.Operations[0]).header(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		// Cached per operation: the same answer again.
		if got := policies.of(doc, doc.Operations[0]).header(); got != tt.want {
			t.Errorf("%s, again: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A document seen not to be shared skips the response cache's key from then
// on; a document too long to remember is never taken for one.
func TestKnownPrivateDocuments(t *testing.T) {
	policies := newCachePolicies(graph.NewExecutableSchema(graph.Config{}).Schema())
	const q = `mutation { markNotificationsRead }`
	if policies.knownPrivate(q) {
		t.Fatal("a document never seen is known private")
	}
	policies.notePrivate(q)
	if !policies.knownPrivate(q) || policies.knownPrivate(`{ liveDrops { edges { cursor } } }`) || policies.knownPrivate("") {
		t.Fatal("knownPrivate does not tell the noted document from others")
	}
	long := "mutation { markNotificationsRead }" + strings.Repeat(" ", maxPrivateText)
	policies.notePrivate(long)
	if policies.knownPrivate(long) {
		t.Fatal("a document over maxPrivateText was remembered")
	}
}
