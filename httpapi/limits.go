package httpapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// depthLimit refuses an operation whose selections nest deeper than max,
// counting through fragments, before anything executes. Introspection
// fields do not count: GraphiQL's own schema query nests deeper than any
// sane limit, and production turns introspection off anyway.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	depth, _ := measure(opCtx.Doc, opCtx.Operation.SelectionSet)
	if depth <= d.max {
		return nil
	}
	err := gqlerror.Errorf("the operation nests %d levels deep, more than the limit of %d", depth, d.max)
	setCode(err, CodeQueryTooDeep)
	return err
}

// fieldsCap is where field counts stop growing: far past any limit, far
// from overflow.
const fieldsCap = 1 << 40

// shape is how deep a selection set nests and how many fields it selects
// once every fragment is spread out.
type shape struct{ depth, fields int }

// measure returns the shape of set. Each fragment is measured once, so a
// document of fragments spreading each other many times costs time in its
// size, not in the number of paths through it (which can be 2^n).
func measure(doc *ast.QueryDocument, set ast.SelectionSet) (depth, fields int) {
	w := shapeWalker{doc: doc, fragments: map[string]*shape{}}
	s := w.set(set)
	return s.depth, s.fields
}

type shapeWalker struct {
	doc       *ast.QueryDocument
	fragments map[string]*shape // nil while being measured
}

func (w shapeWalker) set(set ast.SelectionSet) shape {
	var out shape
	for _, sel := range set {
		var s shape
		switch sel := sel.(type) {
		case *ast.Field:
			s = w.set(sel.SelectionSet)
			s.fields++
			if strings.HasPrefix(sel.Name, "__") {
				s.depth = 0
			} else {
				s.depth++
			}
		case *ast.InlineFragment:
			s = w.set(sel.SelectionSet)
		case *ast.FragmentSpread:
			s = w.fragment(sel)
		}
		out.depth = max(out.depth, s.depth)
		out.fields = min(out.fields+s.fields, fieldsCap)
	}
	return out
}

func (w shapeWalker) fragment(spread *ast.FragmentSpread) shape {
	if s, ok := w.fragments[spread.Name]; ok {
		if s == nil {
			return shape{} // a cycle, which validation has refused already
		}
		return *s
	}
	def := spread.Definition
	if def == nil {
		def = w.doc.Fragments.ForName(spread.Name)
	}
	if def == nil {
		return shape{}
	}
	w.fragments[spread.Name] = nil
	s := w.set(def.SelectionSet)
	w.fragments[spread.Name] = &s
	return s
}

// noIntrospection refuses __schema and __type before execution, where gqlgen
// would otherwise run the operation and fail those fields one by one.
type noIntrospection struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = noIntrospection{}

func (noIntrospection) ExtensionName() string                   { return "NoIntrospection" }
func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }

func (noIntrospection) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if introspects(opCtx.Doc, opCtx.Operation.SelectionSet, map[string]bool{}) {
		err := gqlerror.Errorf("introspection is disabled")
		setCode(err, "GRAPHQL_VALIDATION_FAILED")
		return err
	}
	return nil
}

// introspects reports whether set selects __schema or __type; they exist on
// the query root only, so fragments are followed but fields are not.
func introspects(doc *ast.QueryDocument, set ast.SelectionSet, seen map[string]bool) bool {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			if sel.Name == "__schema" || sel.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if introspects(doc, sel.SelectionSet, seen) {
				return true
			}
		case *ast.FragmentSpread:
			if seen[sel.Name] {
				continue
			}
			seen[sel.Name] = true
			if def := doc.Fragments.ForName(sel.Name); def != nil && introspects(doc, def.SelectionSet, seen) {
				return true
			}
		}
	}
	return false
}

// complexityLimit is gqlgen's complexity limit answering QUERY_TOO_COMPLEX.
// The cost of each field comes from the schema's complexity functions.
type complexityLimit struct{ inner *extension.ComplexityLimit }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = complexityLimit{}

func (c complexityLimit) ExtensionName() string { return c.inner.ExtensionName() }

func (c complexityLimit) Validate(schema graphql.ExecutableSchema) error {
	return c.inner.Validate(schema)
}

func (c complexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	// gqlgen prices every field as many times as fragments spread it, which
	// takes as long as executing them: an operation selecting more fields
	// than the limit allows is refused before that walk, as each field costs
	// at least 1.
	_, fields := measure(opCtx.Doc, opCtx.Operation.SelectionSet)
	if limit := c.inner.Func(ctx, opCtx); fields > limit {
		err := gqlerror.Errorf("the operation selects %d fields once its fragments are spread, more than the limit of %d", fields, limit)
		setCode(err, CodeQueryTooComplex)
		return err
	}
	err := c.inner.MutateOperationContext(ctx, opCtx)
	if err != nil {
		stats := extension.GetComplexityStats(graphql.WithOperationContext(ctx, opCtx))
		if stats != nil {
			err.Message = fmt.Sprintf("the operation costs %d, more than the limit of %d", stats.Complexity, stats.ComplexityLimit)
		}
		setCode(err, CodeQueryTooComplex)
	}
	return err
}

// mutationCost refuses a mutation whose root fields cost more than max
// together, before any of them runs: each field costs 1, or what costs says
// (a password hash costs far more than a write). Aliases and fragments count
// every time they select a field.
type mutationCost struct {
	max   int
	costs map[string]int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = mutationCost{}

func (mutationCost) ExtensionName() string                   { return "MutationCost" }
func (mutationCost) Validate(graphql.ExecutableSchema) error { return nil }

func (m mutationCost) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil || opCtx.Operation.Operation != ast.Mutation {
		return nil
	}
	w := costWalker{doc: opCtx.Doc, costs: m.costs, fragments: map[string]int{}}
	cost := w.set(opCtx.Operation.SelectionSet)
	if cost <= m.max {
		return nil
	}
	err := gqlerror.Errorf("the request's mutations cost %d, more than the limit of %d: send them in several requests", cost, m.max)
	setCode(err, CodeTooManyMutations)
	return err
}

type costWalker struct {
	doc       *ast.QueryDocument
	costs     map[string]int
	fragments map[string]int // -1 while being walked
}

func (w costWalker) set(set ast.SelectionSet) int {
	total := 0
	for _, sel := range set {
		c := 0
		switch sel := sel.(type) {
		case *ast.Field:
			c = 1
			if v, ok := w.costs[sel.Name]; ok {
				c = v
			}
		case *ast.InlineFragment:
			c = w.set(sel.SelectionSet)
		case *ast.FragmentSpread:
			c = w.fragment(sel.Name)
		}
		total = min(total+c, fieldsCap)
	}
	return total
}

func (w costWalker) fragment(name string) int {
	if c, ok := w.fragments[name]; ok {
		return max(c, 0) // -1: a cycle, which validation has refused already
	}
	def := w.doc.Fragments.ForName(name)
	if def == nil {
		return 0
	}
	w.fragments[name] = -1
	c := w.set(def.SelectionSet)
	w.fragments[name] = c
	return c
}
