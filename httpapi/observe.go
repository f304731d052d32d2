package httpapi

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"livedrops/logging"
	"livedrops/metrics"
)

// observer sees every response the executor sends, refusals included: it
// times queries and mutations, counts error codes, and tells the access log
// which operation ran.
type observer struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = observer{}

func (observer) ExtensionName() string                   { return "Observer" }
func (observer) Validate(graphql.ExecutableSchema) error { return nil }

func (observer) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil {
		observe(ctx, resp)
	}
	return resp
}

// observe is InterceptResponse's work, out of its frame: a subscription
// waits for its next event inside that frame, for as long as it lasts.
//
//go:noinline
func observe(ctx context.Context, resp *graphql.Response) {
	rec := logging.RequestFrom(ctx)
	for _, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		if code == "" {
			code = "UNKNOWN"
		}
		metrics.CountError(code)
		rec.AddErrorCode(code)
	}
	if !graphql.HasOperationContext(ctx) {
		return
	}
	opCtx := graphql.GetOperationContext(ctx)
	if opCtx.Operation == nil {
		return
	}
	name, opType := opCtx.Operation.Name, string(opCtx.Operation.Operation)
	rec.SetOperation(name, opType)
	// A subscription lives for minutes and sends many responses: its
	// lifetime would say nothing about how fast the server is.
	if opCtx.Operation.Operation != ast.Subscription && !opCtx.Stats.OperationStart.IsZero() {
		metrics.ObserveOperation(name, opType, time.Since(opCtx.Stats.OperationStart))
	}
}
