// Package httpapi is the HTTP face of Live Drops: it serves the GraphQL
// executor on /query (POST, GET, WebSocket and server-sent events), the
// health and readiness probes, Prometheus metrics, the Playground and any
// extra routes, with request ids, access logs, metrics and protection
// (depth, complexity, body size, introspection) around every request.
//
// GraphQL over HTTP follows the GraphQL Foundation's spec:
//   - POST takes an application/json body; any other Content-Type is 415.
//     GET takes query, operationName, variables and extensions as URL
//     parameters and runs queries only (a mutation over GET is 405).
//   - The response media type is negotiated by Accept between
//     application/graphql-response+json and application/json. No Accept, or
//     one whose best match is a wildcard (*/*, application/*), gets
//     application/json, which every client reads; an Accept naming neither
//     is 406.
//   - A request that is not well-formed (malformed JSON, wrong parameter
//     types, no query) is 400 with code BAD_USER_INPUT; a body over
//     Options.MaxBodyBytes is 413.
//   - A well-formed request that fails before execution (parse, validation,
//     variable coercion, depth or complexity limits) is 400 with
//     application/graphql-response+json and 200 with application/json.
//     PERSISTED_QUERY_NOT_FOUND is always 200: Apollo clients turn automatic
//     persisted queries off for good when that answer comes with 400. Such
//     an answer has no data entry, under either media type.
//   - Every answer has a Cache-Control: public or private with the smallest
//     max-age of the @cacheControl hints of the fields the query selects,
//     no-store for mutations, errors and anything with a maxAge of 0. A
//     public query is answered from the response cache (Options.Responses)
//     without executing anything. A successful GET has an ETag, and a GET
//     whose If-None-Match holds it is answered 304, so a CDN can sit in
//     front of GETs of persisted queries.
//   - Subscriptions run over WebSocket (graphql-transport-ws and the legacy
//     graphql-ws) or server-sent events (POST with Accept: text/event-stream),
//     not over plain POST or GET.
//
// Routes: /query (GraphQL), /healthz (200 while the process serves),
// /readyz (Options.Ready, 503 naming what failed), /metrics (Prometheus),
// Options.Extra, and Options.Playground for "/" and everything else.
//
// WebSockets: outside production any page may connect; in production only
// pages of the server's own origin or of Options.AllowedOrigins, and clients
// that send no Origin (apps, not browsers). A connection closes with
// graphql-transport-ws's codes (on either protocol): 4400 for a message that
// is not of the protocol, 4401 for an operation before connection_ack, 4403
// for a refused connection_init, 4408 when none came in time, 4409 for an
// operation id already running, 4429 for a second connection_init; and with
// 1013 when its stream was ended for falling behind.
//
// Every error a client sees has extensions.code: a *domain.Error keeps its
// code (and its field and extensions); gqlgen's parse and validation errors
// keep GRAPHQL_PARSE_FAILED and GRAPHQL_VALIDATION_FAILED; a value of the
// wrong type for an argument or variable is BAD_USER_INPUT; the limits answer
// QUERY_TOO_DEEP and QUERY_TOO_COMPLEX; anything else, panics included, is
// INTERNAL with the message "internal error", its real cause logged with the
// request id.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"livedrops/domain"
	"livedrops/logging"
	"livedrops/metrics"
	"livedrops/respcache"
)

// Error codes of this layer, beside the domain's.
const (
	CodeQueryTooDeep    = "QUERY_TOO_DEEP"
	CodeQueryTooComplex = "QUERY_TOO_COMPLEX"
)

func init() {
	// Refused before execution like validation errors: a WebSocket client gets
	// them as an "error" message, not as a result.
	errcode.RegisterErrorType(CodeQueryTooDeep, errcode.KindProtocol)
	errcode.RegisterErrorType(CodeQueryTooComplex, errcode.KindProtocol)
}

// Defaults for the zero values of Options.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultComplexity   = 1000
	DefaultDepth        = 12
)

// Variables for tests:
var (
	// keepAlive is how often WebSocket and SSE connections are pinged, well
	// under the idle timeouts of common proxies (60 s).
	keepAlive = 15 * time.Second
	// wsInitTimeout bounds the wait for connection_init.
	wsInitTimeout = 10 * time.Second
)

// Timings and sizes.
const (
	// checkTimeout bounds each readiness check.
	checkTimeout = 2 * time.Second
	// parserTokenLimit refuses documents far larger than any real client
	// sends before they cost more than their parse.
	parserTokenLimit = 20000
	// queryCacheSize is how many parsed and validated documents are kept.
	queryCacheSize = 1000
)

// Check is one readiness check: Fn returns nil when its dependency is usable.
type Check struct {
	Name string
	Fn   func(context.Context) error
}

// Options are what New needs; only Schema is required.
type Options struct {
	Schema graphql.ExecutableSchema
	// Log receives access lines and the causes of internal errors; nil is
	// slog.Default(). Request ids are added to its lines either way.
	Log *slog.Logger
	// Prod turns introspection off and WebSocket origins strict.
	Prod bool
	// MaxBodyBytes caps request bodies and WebSocket messages (0: 1 MiB).
	MaxBodyBytes int64
	// Complexity and Depth are the largest cost and nesting an operation may
	// have (0: 1000 and 12).
	Complexity int
	Depth      int
	// APQCache stores automatic persisted queries (see NewRedisAPQCache);
	// nil keeps them in an in-process LRU.
	APQCache graphql.Cache[string]
	// Authenticate puts the viewer of a bearer token in the request context
	// of /query; nil leaves every request anonymous.
	Authenticate func(http.Handler) http.Handler
	// InitWebSocket authenticates a WebSocket at connection_init.
	InitWebSocket func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error)
	// PerRequest wrap /query inside Authenticate, first outermost (for
	// example the dataloader middleware).
	PerRequest []func(http.Handler) http.Handler
	// Ready are the checks /readyz runs.
	Ready []Check
	// Playground serves "/" and every path no other route claims (its
	// /assets/ and any other page); without it those paths are 404.
	Playground http.Handler
	// Extra are more routes, by http.ServeMux pattern (e.g. "/internal/").
	Extra map[string]http.Handler
	// AllowedOrigins are host patterns (path.Match syntax, e.g.
	// "app.example.com" or "https://*.example.com") whose pages may open a
	// WebSocket in production besides the server's own origin. Outside
	// production every origin may, so local front ends on other ports work.
	AllowedOrigins []string
	// Responses caches whole responses of public queries; nil turns the
	// response cache off (Cache-Control and ETags are sent either way).
	Responses *respcache.Cache
	// WriteTimeout bounds one send to a WebSocket or SSE client that stopped
	// reading; past it the connection is closed. Zero: 10 s.
	WriteTimeout time.Duration
}

func (o Options) wsWriteTimeout() time.Duration {
	if o.WriteTimeout > 0 {
		return o.WriteTimeout
	}
	return wsWriteTimeout
}

// New returns the handler of every route the server answers.
func New(o Options) http.Handler {
	if o.Schema == nil {
		panic("httpapi: Options.Schema is required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	o.Log = logging.WithRequestIDs(o.Log)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Complexity <= 0 {
		o.Complexity = DefaultComplexity
	}
	if o.Depth <= 0 {
		o.Depth = DefaultDepth
	}

	mux := http.NewServeMux()
	mux.Handle("/query", queryHandler(o))
	mux.Handle("/healthz", http.HandlerFunc(healthz))
	mux.Handle("/readyz", readyz(o.Log, o.Ready))
	mux.Handle("/metrics", metrics.Handler())
	if o.Playground != nil {
		// At "/": every path no other route claims is the web pages' to
		// answer (the Playground, its assets, other pages, or 404).
		mux.Handle("/", o.Playground)
	}
	for pattern, h := range o.Extra {
		mux.Handle(pattern, h)
	}

	access := logging.AccessLog(o.Log, logging.AccessOptions{
		Quiet: func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return true
			}
			return false
		},
		Done: func(r *http.Request, status int, _ time.Duration) {
			metrics.CountHTTPRequest(routeLabel(r), status)
		},
	})
	return withRequestID(access(recoverHTTP(o.Log, mux)))
}

// routeLabel is the router pattern that served r, so the label set stays as
// small as the route table.
func routeLabel(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	return r.Pattern
}

// queryHandler is the GraphQL endpoint with its protections and the
// caller's middleware.
func queryHandler(o Options) http.Handler {
	srv := handler.New(o.Schema)

	srv.AddTransport(&wsTransport{
		accept: coderws.AcceptOptions{
			Subprotocols: []string{subprotocolGraphQLWS, subprotocolTransportWS},
			// Off production any page may connect; in production the page must
			// come from this server or an allowed origin, or send no Origin.
			InsecureSkipVerify: !o.Prod,
			OriginPatterns:     o.AllowedOrigins,
		},
		init:         initWebSocket(o.Log, o.InitWebSocket),
		log:          o.Log,
		readLimit:    o.MaxBodyBytes,
		initTimeout:  wsInitTimeout,
		writeTimeout: o.wsWriteTimeout(),
		keepAlive:    keepAlive,
	})
	srv.AddTransport(transport.SSE{KeepAlivePingInterval: keepAlive})
	// After SSE: it takes every other request.
	srv.AddTransport(&httpTransport{policies: newCachePolicies(o.Schema.Schema()), responses: o.Responses})

	srv.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
	srv.SetParserTokenLimit(parserTokenLimit)
	// "Did you mean …" names fields: with introspection off, it would still
	// let anyone map the schema.
	srv.SetDisableSuggestion(o.Prod)
	srv.SetErrorPresenter(presenter{log: o.Log}.present)
	srv.SetRecoverFunc(recoverer{log: o.Log}.recover)

	srv.Use(observer{})
	apq := o.APQCache
	if apq == nil {
		apq = lru.New[string](queryCacheSize)
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: apq})
	// Cheapest refusals first: depth, then introspection, then cost.
	srv.Use(depthLimit{max: o.Depth})
	if o.Prod {
		srv.Use(noIntrospection{})
	} else {
		srv.Use(extension.Introspection{})
	}
	srv.Use(complexityLimit{inner: extension.FixedComplexityLimit(o.Complexity)})
	if o.Responses != nil {
		srv.AroundFields(respcache.Collect)
	}

	var h http.Handler = boundSSEWrites(o.wsWriteTimeout(), srv)
	for i := len(o.PerRequest) - 1; i >= 0; i-- {
		h = o.PerRequest[i](h)
	}
	if o.Authenticate != nil {
		h = o.Authenticate(h)
	}
	return limitBody(o.MaxBodyBytes, h)
}

// initWebSocket runs the caller's connection_init check so that a refusal
// closes the socket (with 4403) giving the error's client message, never its
// detail.
func initWebSocket(log *slog.Logger, check transport.WebsocketInitFunc) transport.WebsocketInitFunc {
	if check == nil {
		return nil
	}
	return func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		rctx, ack, err := check(ctx, p)
		if err == nil {
			return rctx, ack, nil
		}
		if domain.ErrorCode(err) == domain.Internal {
			log.ErrorContext(ctx, "websocket connection_init failed", "error", err)
		}
		return nil, nil, errors.New(domain.ErrorMessage(err))
	}
}
