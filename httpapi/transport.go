package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"livedrops/domain"
	"livedrops/logging"
	"livedrops/metrics"
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
// body back; this one answers as the package comment says.
type httpTransport struct{}

var _ graphql.Transport = httpTransport{}

// Supports takes every request the WebSocket and SSE transports did not, so
// a wrong method or media type gets a GraphQL-shaped answer.
func (httpTransport) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == ""
}

func (httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
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

	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		writeResponse(w, media, requestErrorStatus(media, errs), resp)
		return
	}

	switch op := opCtx.Operation.Operation; {
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

	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	writeResponse(w, media, http.StatusOK, responses(ctx))
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

func writeResponse(w http.ResponseWriter, media string, status int, resp *graphql.Response) {
	b, err := json.Marshal(resp)
	if err != nil {
		// Only a resolver returning an unencodable value gets here.
		media, status = mediaJSON, http.StatusInternalServerError
		b = []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}`)
	}
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
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
// the acceptable type with the highest q, ties to the one listed first, a
// wildcard to application/graphql-response+json. ok is false when neither
// type is acceptable.
func negotiate(accept []string) (media string, ok bool) {
	if len(accept) == 0 {
		return mediaGraphQLResponse, true
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
		return mediaGraphQLResponse, true
	}
	g, gok := best[mediaGraphQLResponse]
	j, jok := best[mediaJSON]
	gok = gok && g.q > 0
	jok = jok && j.q > 0
	switch {
	case gok && jok:
		if j.q > g.q || (j.q == g.q && j.exact && (!g.exact || j.order < g.order)) {
			return mediaJSON, true
		}
		return mediaGraphQLResponse, true
	case gok:
		return mediaGraphQLResponse, true
	case jok:
		return mediaJSON, true
	}
	return "", false
}
