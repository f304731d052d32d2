package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// nested returns a query selecting nested.child… levels deep in all.
func nested(levels int) string {
	return "{ nested " + strings.Repeat("{ child ", levels-1) + "{ level }" + strings.Repeat(" }", levels-1) + " }"
}

func TestDepthLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Depth = 6 })

	// nested + 4 × child + level = 6 levels: allowed.
	if r := e.query(nested(5), nil); r.status != 200 || len(r.gql.Errors) != 0 {
		t.Fatalf("at the limit: status %d body %s", r.status, r.body)
	}

	before := e.res.Calls()
	for name, q := range map[string]string{
		"plain": nested(6),
		"through fragments": `
			query Deep { nested { ...A } }
			fragment A on Nested { child { ...B } }
			fragment B on Nested { child { ... on Nested { child { ...C } } } }
			fragment C on Nested { child { child { level } } }`,
		"fragment spread twice at different depths": `
			{ nested { ...L child { child { child { child { ...L } } } } } }
			fragment L on Nested { level child { level } }`,
	} {
		for _, accept := range []string{"application/graphql-response+json", "application/json"} {
			r := e.query(q, nil, "Accept", accept)
			want := 400
			if accept == "application/json" {
				want = 200
			}
			if r.status != want || r.code(0) != CodeQueryTooDeep || r.gql.Data != nil {
				t.Errorf("%s (%s): status %d body %s", name, accept, r.status, r.body)
			}
		}
	}
	if e.res.Calls() != before {
		t.Fatal("a resolver ran for a refused query")
	}
}

func TestDepthIgnoresIntrospection(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Depth = 3 })
	q := `{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }`
	if r := e.query(q, nil); r.status != 200 || len(r.gql.Errors) != 0 {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
}

func TestManySpreadsAreRefusedCheaply(t *testing.T) {
	// Each fragment spreads the next one twice: 2^40 paths through 40
	// fragments, which gqlgen's own cost walk would take ages over.
	var b strings.Builder
	b.WriteString("{ nested { ...F0 } }\n")
	for i := range 40 {
		b.WriteString("fragment F" + itoa(i) + " on Nested { level")
		if i < 39 {
			b.WriteString(" ...F" + itoa(i+1) + " ... on Nested { ...F" + itoa(i+1) + " }")
		}
		b.WriteString(" }\n")
	}
	e := newEnv(t, nil)
	start := time.Now()
	r := e.query(b.String(), nil)
	if r.status != 400 || r.code(0) != CodeQueryTooComplex {
		t.Fatalf("status %d body %.300s", r.status, r.body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusing took %v", d)
	}
}

func TestMeasure(t *testing.T) {
	for _, tt := range []struct {
		query         string
		depth, fields int
	}{
		{`{ hello }`, 1, 1},
		{`{ nested { level child { level } } }`, 3, 4},
		{`{ nested { ...A ...A } } fragment A on Nested { child { level } }`, 3, 5},
		{`{ __schema { types { name } } hello }`, 1, 4},
	} {
		doc, err := parser.ParseQuery(&ast.Source{Input: tt.query})
		if err != nil {
			t.Fatal(err)
		}
		depth, fields := measure(doc, doc.Operations[0].SelectionSet)
		if depth != tt.depth || fields != tt.fields {
			t.Errorf("%s: depth %d fields %d, want %d and %d", tt.query, depth, fields, tt.depth, tt.fields)
		}
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestComplexityLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Complexity = 1000 })

	// items costs first × (child { child { name } } = 3).
	if r := e.query(`{ items(first: 300) { child { child { name } } } }`, nil); r.status != 200 || len(r.gql.Errors) != 0 {
		t.Fatalf("under the limit: status %d body %.300s", r.status, r.body)
	}
	before := e.res.Calls()
	r := e.query(`query Costly($n: Int!) { items(first: $n) { child { child { name } } } }`, map[string]any{"n": 500})
	if r.status != 400 || r.code(0) != CodeQueryTooComplex || r.gql.Data != nil ||
		!strings.Contains(r.gql.Errors[0].Message, "1500") {
		t.Fatalf("over the limit: status %d body %s", r.status, r.body)
	}
	if e.res.Calls() != before {
		t.Fatal("a resolver ran for a refused query")
	}
}

func TestIntrospection(t *testing.T) {
	queries := []string{
		`{ __schema { queryType { name } } }`,
		`{ __type(name: "Item") { name } }`,
		`{ ...Q } fragment Q on Query { ... on Query { __schema { types { name } } } }`,
	}

	dev := newEnv(t, nil)
	for _, q := range queries {
		if r := dev.query(q, nil); r.status != 200 || len(r.gql.Errors) != 0 {
			t.Errorf("dev %s: status %d body %.200s", q, r.status, r.body)
		}
	}

	prod := newEnv(t, func(o *Options) { o.Prod = true })
	for _, q := range queries {
		r := prod.query(q, nil)
		if r.status != 400 || r.code(0) != "GRAPHQL_VALIDATION_FAILED" || r.gql.Errors[0].Message != "introspection is disabled" {
			t.Errorf("prod %s: status %d body %s", q, r.status, r.body)
		}
	}
	if r := prod.query(`{ __typename hello }`, nil); r.status != 200 || r.gql.Data["__typename"] != "Query" {
		t.Errorf("prod __typename: status %d body %s", r.status, r.body)
	}
}

// introspectionQuery is what GraphiQL asks when it opens (graphql-js's
// getIntrospectionQuery with descriptions, directive repeatability and
// input value deprecation).
const introspectionQuery = `
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}`

func TestPlaygroundIntrospectionPassesDefaultLimits(t *testing.T) {
	e := newEnv(t, nil)
	r := e.query(introspectionQuery, nil)
	if r.status != 200 || len(r.gql.Errors) != 0 || r.gql.Data["__schema"] == nil {
		t.Fatalf("status %d body %.500s", r.status, r.body)
	}
}

func TestProductionHidesSchemaHints(t *testing.T) {
	for prod, hint := range map[bool]bool{false: true, true: false} {
		e := newEnv(t, func(o *Options) { o.Prod = prod })
		r := e.query(`{ helo }`, nil)
		if r.code(0) != "GRAPHQL_VALIDATION_FAILED" || strings.Contains(r.gql.Errors[0].Message, "Did you mean") != hint {
			t.Errorf("prod=%v: %s", prod, r.body)
		}
	}
}

func TestParserTokenLimit(t *testing.T) {
	e := newEnv(t, nil)
	q := "{ " + strings.Repeat("hello ", parserTokenLimit) + "}"
	r := e.query(q, nil)
	if r.status != 400 || r.code(0) != "GRAPHQL_PARSE_FAILED" {
		t.Fatalf("status %d body %.300s", r.status, r.body)
	}
}

func TestMutationCost(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxMutationCost = 3 })
	for _, tc := range []struct {
		name, query string
		refused     bool
	}{
		{"one", `mutation { bump }`, false},
		{"at the limit", `mutation { a: bump b: bump c: bump }`, false},
		{"aliases past it", `mutation { a: bump b: bump c: bump d: bump }`, true},
		{"fragments past it", `mutation { ...F ...F } fragment F on Mutation { a: bump b: bump }`, true},
		{"inline fragments past it", `mutation { ... { a: bump b: bump } ... { c: bump d: bump } }`, true},
		{"queries are not counted", `{ a: __typename b: __typename c: __typename d: __typename }`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.res.Calls()
			r := e.query(tc.query, nil)
			if got := r.code(0) == CodeTooManyMutations; got != tc.refused {
				t.Fatalf("refused %v; want %v: status %d body %s", got, tc.refused, r.status, r.body)
			}
			if tc.refused && e.res.Calls() != before {
				t.Fatal("a resolver ran for a refused mutation")
			}
		})
	}
}
