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

func (depthLimit) ExtensionName() string                     { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	depth := (&depthWalker{doc: opCtx.Doc, fragments: map[string]int{}}).depth(opCtx.Operation.SelectionSet)
	if depth <= d.max {
		return nil
	}
	err := gqlerror.Errorf("the operation nests %d levels deep, more than the limit of %d", depth, d.max)
	setCode(err, CodeQueryTooDeep)
	return err
}

// depthWalker measures selection depth. Each fragment's depth is measured
// once, so a document of fragments spreading each other many times costs
// time in its size, not in the number of paths through it.
type depthWalker struct {
	doc       *ast.QueryDocument
	fragments map[string]int // depth by fragment name; -1 while being measured
}

func (w *depthWalker) depth(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		var d int
		switch sel := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(sel.Name, "__") {
				continue
			}
			d = 1 + w.depth(sel.SelectionSet)
		case *ast.InlineFragment:
			d = w.depth(sel.SelectionSet)
		case *ast.FragmentSpread:
			d = w.fragment(sel)
		}
		deepest = max(deepest, d)
	}
	return deepest
}

func (w *depthWalker) fragment(spread *ast.FragmentSpread) int {
	if d, ok := w.fragments[spread.Name]; ok {
		return max(d, 0) // -1: a cycle, which validation has refused already
	}
	def := spread.Definition
	if def == nil {
		def = w.doc.Fragments.ForName(spread.Name)
	}
	if def == nil {
		return 0
	}
	w.fragments[spread.Name] = -1
	d := w.depth(def.SelectionSet)
	w.fragments[spread.Name] = d
	return d
}

// noIntrospection refuses __schema and __type before execution, where gqlgen
// would otherwise run the operation and fail those fields one by one.
type noIntrospection struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = noIntrospection{}

func (noIntrospection) ExtensionName() string                     { return "NoIntrospection" }
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
