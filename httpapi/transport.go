package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"livedrops/domain"
	"livedrops/logging"
	"livedrops/metrics"
	"livedrops/respcache"
)

// Response media types of GraphQL over HTTP.
const (
	mediaGraphQLResponse = "application/graphql-response+json"
	mediaJSON            = "application/json"
)

// httpTransport serves GraphQL over HTTP: POST and GET as the spec says.
// gqlgen's POST and GET transports get most of it right, but answer
// validation failures 422 under application/json, a mutation over GET 406,
// an unknown Content-Type 400, an oversized body 200, and echo a malformed
// body back; this one answers as the package comment says. It also sets
// each answer's Cache-Control from the document's cache hints, answers
// public queries from the response cache, and GETs with ETag and 304.
type httpTransport struct {
	policies *cachePolicies
	// responses is the response cache; nil turns it off.
	responses *respcache.Cache
}

var _ graphql.Transport = (*httpTransport)(nil)

// Supports takes every request the WebSocket and SSE transports did not, so
// a wrong method or media type gets a GraphQL-shaped answer.
func (*httpTransport) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == ""
}

func (t *httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	media, ok := negotiate(r.Header.Values("Accept"))
	if !ok {
		refuse(w, r, mediaJSON, http.StatusNotAcceptable,
			"this endpoint answers application/graphql-response+json or application/json; the Accept header allows neither")
		return
	}
	w.Header().Add("Vary", "Accept")

	start := graphql.Now()
	params, status, msg := readParams(r)
	if status != 0 {
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST")
		}
		refuse(w, r, media, status, msg)
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	key, keyed := t.responseKey(params)
	if keyed {
		if e, hit := t.responses.Get(key); hit {
			// Answered before parsing, persisted-query lookup or execution.
			policy := cachePolicy{MaxAge: e.RemainingAge(time.Now())}
			writeAnswer(w, r, media, http.StatusOK, policy, e.Body, e.ETag)
			return
		}
	}

	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		writeResponse(w, media, requestErrorStatus(media, errs), resp)
		return
	}

	op := opCtx.Operation.Operation
	switch {
	case r.Method == http.MethodGet && op != ast.Query:
		// GET may be cached and prefetched: it must never change anything.
		w.Header().Set("Allow", "POST")
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx),
			gqlerror.List{badInput("a %s cannot be sent with GET; use POST", op)})
		writeResponse(w, media, http.StatusMethodNotAllowed, resp)
		return
	case op == ast.Subscription:
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx),
			gqlerror.List{badInput("subscriptions run over a WebSocket (graphql-transport-ws) or server-sent events (Accept: text/event-stream)")})
		writeResponse(w, media, requestErrorStatus(media, nil), resp)
		return
	}

	policy := t.policies.of(opCtx.Doc, opCtx.Operation)
	if !policy.shared() {
		t.policies.notePrivate(params.Query)
	}
	ctx, run := t.startRun(ctx, op == ast.Mutation, keyed && policy.shared())
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	resp := responses(ctx)
	if len(resp.Errors) > 0 {
		policy = noStore
	}
	body, err := encodeResponse(resp)
	if err != nil {
		writeInternal(w)
		return
	}
	etag := ""
	if r.Method == http.MethodGet && len(resp.Errors) == 0 {
		etag = entityTag(body)
	}
	t.finishRun(ctx, run, key, policy, body, etag)
	writeAnswer(w, r, media, http.StatusOK, policy, body, etag)
}

// cacheRun is what one execution owes the response cache: the tags its
// fields collect, to store a public answer under, or for a mutation to evict.
type cacheRun struct {
	tags     *respcache.Tags // nil: nothing to do
	mutation bool
	since    uint64 // the eviction sequence number as execution began
	started  time.Time
}

// startRun sets ctx up to collect tags when the execution's answer may be
// stored (storable) or is a mutation's.
func (t *httpTransport) startRun(ctx context.Context, mutation, storable bool) (context.Context, cacheRun) {
	run := cacheRun{mutation: mutation, started: time.Now()}
	switch {
	case t.responses == nil:
	case mutation:
		ctx, run.tags = respcache.WithTags(ctx, true)
	case storable:
		run.since = t.responses.Seq()
		ctx, run.tags = respcache.WithTags(ctx, false)
	}
	return ctx, run
}

// finishRun evicts what a mutation's result holds, so the writer's next
// read sees its change without waiting for the event, or stores a public
// answer.
func (t *httpTransport) finishRun(ctx context.Context, run cacheRun, key string, policy cachePolicy, body []byte, etag string) {
	if run.tags == nil {
		return
	}
	tags, complete := run.tags.List()
	switch {
	case run.mutation:
		if v := domain.ViewerFrom(ctx); v != nil {
			tags = append(tags, respcache.UserTag(v.UserID)+":following")
		}
		t.responses.Evict(tags...)
	case complete && policy.shared():
		if etag == "" {
			etag = entityTag(body)
		}
		age := min(time.Duration(policy.MaxAge)*time.Second, respcache.MaxTTL)
		t.responses.Put(key, &respcache.Entry{
			Body: body, ETag: etag,
			Expires: run.started.Add(age), Tags: tags, Since: run.since,
		})
	}
}

// responseKey is the response cache key of params, when the cache is on and
// the request names its document (by text or persisted-query hash).
func (t *httpTransport) responseKey(params *graphql.RawParams) (string, bool) {
	if t.responses == nil || t.policies.knownPrivate(params.Query) {
		return "", false
	}
	var docHash string
	if params.Query != "" {
		sum := sha256.Sum256([]byte(params.Query))
		docHash = hex.EncodeToString(sum[:])
	} else {
		pq, _ := params.Extensions["persistedQuery"].(map[string]any)
		h, _ := pq["sha256Hash"].(string)
		if !isSHA256Hex(h) {
			return "", false
		}
		docHash = strings.ToLower(h)
	}
	return respcache.Key(docHash, params.OperationName, params.Variables)
}

// readParams reads the GraphQL request from r. A non-zero status means r is
// not a well-formed GraphQL-over-HTTP request, and msg says why.
func readParams(r *http.Request) (params *graphql.RawParams, status int, msg string) {
	params = &graphql.RawParams{Headers: r.Header}
	switch r.Method {
	case http.MethodPost:
		mt, mtParams, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != mediaJSON {
			return nil, http.StatusUnsupportedMediaType, "send the request as Content-Type: application/json"
		}
		if cs, ok := mtParams["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, http.StatusUnsupportedMediaType, "the request body must be UTF-8"
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if maxErr, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, http.StatusRequestEntityTooLarge, tooLarge(maxErr.Limit)
			}
			return nil, http.StatusBadRequest, "could not read the request body"
		}
		if err := decodeJSON(body, params); err != nil {
			return nil, http.StatusBadRequest, "bad request body: " + err.Error()
		}
	case http.MethodGet:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, http.StatusBadRequest, "the URL query string is malformed"
		}
		params.Query = q.Get("query")
		params.OperationName = q.Get("operationName")
		if v := q.Get("variables"); v != "" {
			if err := decodeJSON([]byte(v), &params.Variables); err != nil {
				return nil, http.StatusBadRequest, "bad variables parameter: " + err.Error()
			}
		}
		if v := q.Get("extensions"); v != "" {
			if err := decodeJSON([]byte(v), &params.Extensions); err != nil {
				return nil, http.StatusBadRequest, "bad extensions parameter: " + err.Error()
			}
		}
	default:
		return nil, http.StatusMethodNotAllowed, "GraphQL requests are GET or POST"
	}
	if params.Query == "" && params.Extensions["persistedQuery"] == nil {
		return nil, http.StatusBadRequest, "the request has no query"
	}
	return params, 0, ""
}

func tooLarge(limit int64) string {
	return "the request body is larger than the limit of " + strconv.FormatInt(limit, 10) + " bytes"
}

// decodeJSON decodes one JSON value into v, numbers kept exact, nothing after it.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if typeErr.Field == "" {
				return errors.New("it must be a JSON object")
			}
			return fmt.Errorf("%s must not be a JSON %s", typeErr.Field, typeErr.Value)
		}
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// requestErrorStatus is the status of a request refused before execution:
// 400 under application/graphql-response+json, 200 under application/json.
func requestErrorStatus(media string, errs gqlerror.List) int {
	for _, e := range errs {
		if e.Extensions["code"] == "PERSISTED_QUERY_NOT_FOUND" {
			return http.StatusOK
		}
	}
	if media == mediaJSON {
		return http.StatusOK
	}
	return http.StatusBadRequest
}

func badInput(format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{
		Message:    fmt.Sprintf(format, args...),
		Extensions: map[string]any{"code": domain.BadUserInput},
	}
}

// writeResponse writes a response that is not to be stored anywhere:
// refusals, errors before execution.
func writeResponse(w http.ResponseWriter, media string, status int, resp *graphql.Response) {
	body, err := encodeResponse(resp)
	if err != nil {
		writeInternal(w)
		return
	}
	writeAnswer(w, nil, media, status, noStore, body, "")
}

// encodeResponse encodes resp; a response that was never executed (Data
// nil: refused before execution) has no data entry at all, as the spec asks.
func encodeResponse(resp *graphql.Response) ([]byte, error) {
	if resp.Data == nil {
		return json.Marshal(struct {
			Errors     gqlerror.List  `json:"errors,omitempty"`
			Extensions map[string]any `json:"extensions,omitempty"`
		}{resp.Errors, resp.Extensions})
	}
	return json.Marshal(resp)
}

// writeInternal answers a response that could not be encoded: only a
// resolver returning an unencodable value gets here.
func writeInternal(w http.ResponseWriter) {
	body := []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`)
	writeAnswer(w, nil, mediaJSON, http.StatusInternalServerError, noStore, body, "")
}

// writeAnswer writes body with its Cache-Control and, when etag is set, its
// ETag, answering 304 to a GET r whose If-None-Match holds that tag.
func writeAnswer(w http.ResponseWriter, r *http.Request, media string, status int, policy cachePolicy, body []byte, etag string) {
	h := w.Header()
	h.Set("Cache-Control", policy.header())
	if etag != "" {
		h.Set("ETag", etag)
		if r != nil && r.Method == http.MethodGet && etagMatches(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Type", media+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// entityTag is the strong ETag of a response body.
func entityTag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 13.1.2).
func etagMatches(ifNoneMatch, etag string) bool {
	for part := range strings.SplitSeq(ifNoneMatch, ",") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if part == "*" || part == etag {
			return true
		}
	}
	return false
}

// refuse answers a request that never reached the executor: not well-formed,
// too large, the wrong method or media type. It counts and logs its code like
// any other error.
func refuse(w http.ResponseWriter, r *http.Request, media string, status int, msg string) {
	metrics.CountError(domain.BadUserInput)
	logging.RequestFrom(r.Context()).AddErrorCode(domain.BadUserInput)
	writeResponse(w, media, status, &graphql.Response{Errors: gqlerror.List{badInput("%s", msg)}})
}

// negotiate picks the response media type from the Accept header values:
// the acceptable type with the highest q, ties to the one named first, a
// wildcard (or no Accept) to application/json, which every client reads.
// ok is false when neither type is acceptable.
func negotiate(accept []string) (media string, ok bool) {
	if len(accept) == 0 {
		return mediaJSON, true
	}
	type choice struct {
		q     float64
		exact bool // named, not matched by a wildcard
		order int
	}
	best := map[string]choice{}
	order := 0
	for _, value := range accept {
		for part := range strings.SplitSeq(value, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			q := 1.0
			if qs, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(qs, 64); err != nil {
					continue
				}
			}
			order++
			for _, candidate := range []string{mediaGraphQLResponse, mediaJSON} {
				exact := mt == candidate
				if !exact && mt != "*/*" && mt != "application/*" {
					continue
				}
				// The most specific range that matches a type sets its q.
				if c, seen := best[candidate]; seen && (c.exact || !exact) {
					continue
				}
				best[candidate] = choice{q: q, exact: exact, order: order}
			}
		}
	}
	if len(best) == 0 && order == 0 {
		// Nothing parseable: as if there were no Accept header.
		return mediaJSON, true
	}
	g, gok := best[mediaGraphQLResponse]
	j, jok := best[mediaJSON]
	gok = gok && g.q > 0
	jok = jok && j.q > 0
	switch {
	case gok && jok:
		if g.q > j.q || (g.q == j.q && g.exact && (!j.exact || g.order < j.order)) {
			return mediaGraphQLResponse, true
		}
		return mediaJSON, true
	case gok:
		return mediaGraphQLResponse, true
	case jok:
		return mediaJSON, true
	}
	return "", false
}
