package httpapi

import (
	"strconv"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// cachePolicy is how long, and by whom, a response may be cached: the
// smallest maxAge of the fields it selects, private when any is PRIVATE.
type cachePolicy struct {
	MaxAge  int
	Private bool
}

// header is the Cache-Control value of a successful response under p.
func (p cachePolicy) header() string {
	switch {
	case p.MaxAge <= 0:
		return "no-store"
	case p.Private:
		return "private, max-age=" + strconv.Itoa(p.MaxAge)
	}
	return "public, max-age=" + strconv.Itoa(p.MaxAge)
}

// shared reports whether a response under p may be kept in a shared cache.
func (p cachePolicy) shared() bool { return p.MaxAge > 0 && !p.Private }

// noStore is the policy of mutations, subscriptions and errors.
var noStore = cachePolicy{}

// hint is one @cacheControl directive's arguments.
type hint struct {
	maxAge  int
	hasAge  bool
	private bool
	inherit bool
}

// cachePolicies computes each operation's policy from its validated
// document and the schema's @cacheControl hints, once per operation while
// gqlgen's query cache keeps its document.
type cachePolicies struct {
	schema *ast.Schema
	byOp   *lru.Cache[*ast.OperationDefinition, cachePolicy]
	types  sync.Map // type name → hint, abstract types folded with their implementations
	// private holds the texts of documents seen not to be shared (mutations,
	// private or uncacheable queries): their requests skip the response
	// cache's key, a hash of the document and the variables.
	private *lru.Cache[string, struct{}]
}

func newCachePolicies(schema *ast.Schema) *cachePolicies {
	byOp, _ := lru.New[*ast.OperationDefinition, cachePolicy](queryCacheSize)
	private, _ := lru.New[string, struct{}](queryCacheSize)
	return &cachePolicies{schema: schema, byOp: byOp, private: private}
}

// knownPrivate reports whether the document query was seen not to be shared.
func (c *cachePolicies) knownPrivate(query string) bool {
	return query != "" && c.private.Contains(query)
}

// notePrivate remembers that the document query is not shared.
func (c *cachePolicies) notePrivate(query string) {
	if query != "" && len(query) <= maxPrivateText {
		c.private.Add(query, struct{}{})
	}
}

// maxPrivateText bounds the documents knownPrivate remembers, so the LRU's
// memory stays bounded whatever clients send.
const maxPrivateText = 16 << 10

// of returns the policy of op, a query of doc; other operations are no-store.
func (c *cachePolicies) of(doc *ast.QueryDocument, op *ast.OperationDefinition) cachePolicy {
	if op == nil || op.Operation != ast.Query {
		return noStore
	}
	if p, ok := c.byOp.Get(op); ok {
		return p
	}
	w := policyWalk{c: c, doc: doc, p: cachePolicy{MaxAge: int(^uint(0) >> 1)}}
	w.selections(op.SelectionSet, 0, true)
	if w.p.MaxAge < 0 {
		w.p.MaxAge = 0
	}
	c.byOp.Add(op, w.p)
	return w.p
}

type policyWalk struct {
	c   *cachePolicies
	doc *ast.QueryDocument
	p   cachePolicy
}

// selections folds every field under set into w.p. Fields under @skip or
// @include count as selected: the policy holds for every variable value.
func (w *policyWalk) selections(set ast.SelectionSet, parentAge int, root bool) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			w.field(s, parentAge, root)
		case *ast.InlineFragment:
			w.selections(s.SelectionSet, parentAge, root)
		case *ast.FragmentSpread:
			if f := w.doc.Fragments.ForName(s.Name); f != nil {
				w.selections(f.SelectionSet, parentAge, root)
			}
		}
	}
}

func (w *policyWalk) field(f *ast.Field, parentAge int, root bool) {
	if f.Definition == nil {
		return
	}
	if f.Name == "__typename" && !root {
		return // inherits, adds nothing
	}
	own := hintOf(f.Definition.Directives)
	typeName := f.Definition.Type.Name()
	of := w.c.typeHint(typeName)
	age := 0
	switch {
	case own.hasAge:
		age = own.maxAge
	case of.hasAge:
		age = of.maxAge
	case own.inherit || of.inherit || (!root && w.isLeaf(typeName)):
		age = parentAge
	}
	w.p.MaxAge = min(w.p.MaxAge, age)
	w.p.Private = w.p.Private || own.private || of.private
	w.selections(f.SelectionSet, age, false)
}

func (w *policyWalk) isLeaf(typeName string) bool {
	d := w.c.schema.Types[typeName]
	return d == nil || d.Kind == ast.Scalar || d.Kind == ast.Enum
}

// typeHint is the hint of a type; for an interface or union, its own folded
// with every possible type's (smallest maxAge, private if any is), since
// which object comes back is known only at run time.
func (c *cachePolicies) typeHint(name string) hint {
	if h, ok := c.types.Load(name); ok {
		return h.(hint)
	}
	d := c.schema.Types[name]
	if d == nil {
		return hint{}
	}
	h := hintOf(d.Directives)
	if d.Kind == ast.Interface || d.Kind == ast.Union {
		for _, impl := range c.schema.GetPossibleTypes(d) {
			ih := hintOf(impl.Directives)
			h.private = h.private || ih.private
			switch {
			case !ih.hasAge:
				h.maxAge, h.hasAge = 0, true
			case !h.hasAge || ih.maxAge < h.maxAge:
				h.maxAge, h.hasAge = ih.maxAge, true
			}
		}
	}
	c.types.Store(name, h)
	return h
}

func hintOf(dirs ast.DirectiveList) hint {
	d := dirs.ForName("cacheControl")
	if d == nil {
		return hint{}
	}
	var h hint
	if a := d.Arguments.ForName("maxAge"); a != nil && a.Value != nil {
		if n, err := strconv.Atoi(a.Value.Raw); err == nil {
			h.maxAge, h.hasAge = n, true
		}
	}
	if a := d.Arguments.ForName("scope"); a != nil && a.Value != nil {
		h.private = a.Value.Raw == "PRIVATE"
	}
	if a := d.Arguments.ForName("inheritMaxAge"); a != nil && a.Value != nil {
		h.inherit = a.Value.Raw == "true"
	}
	return h
}
