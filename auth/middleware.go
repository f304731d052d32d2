package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"livedrops/domain"
)

// Middleware puts the viewer of a valid bearer token in the request context.
// No Authorization header is an anonymous request; a header that does not
// prove who is asking is answered 401, so a client never mistakes an expired
// session for being logged out.
func (t *Tokens) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := t.ViewerFromAuthorization(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			writeRefusal(w, err)
			return
		}
		if v != nil {
			ctx := r.Context()
			if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
				// A stream outlives its request's check: it ends with the session.
				ctx = t.SessionContext(ctx, v)
			}
			r = r.WithContext(domain.WithViewer(ctx, v))
		}
		next.ServeHTTP(w, r)
	})
}

// ViewerFromAuthorization reads an Authorization header value ("Bearer
// <token>"), as sent on HTTP or in a WebSocket connection_init payload. An
// empty value is anonymous: (nil, nil). Anything else that is not a valid
// token is an UNAUTHENTICATED error.
func (t *Tokens) ViewerFromAuthorization(ctx context.Context, header string) (*domain.Viewer, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, nil
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, domain.Errorf(domain.Unauthenticated, "the Authorization header must be \"Bearer <token>\"")
	}
	return t.Parse(ctx, token)
}

// writeRefusal answers 401 with a GraphQL-shaped error body, which GraphQL
// clients already know how to read; a session that could not be checked
// (neither Redis nor PostgreSQL answered) is 503, not a log-out.
func writeRefusal(w http.ResponseWriter, err error) {
	status, code := http.StatusUnauthorized, domain.Unauthenticated
	if domain.ErrorCode(err) != domain.Unauthenticated {
		status, code = http.StatusServiceUnavailable, domain.Internal
		err = domain.Errorf(domain.Internal, "could not check the session; try again")
	}
	type gqlError struct {
		Message    string            `json:"message"`
		Extensions map[string]string `json:"extensions"`
	}
	body := struct {
		Errors []gqlError `json:"errors"`
	}{[]gqlError{{Message: domain.ErrorMessage(err), Extensions: map[string]string{"code": code}}}}
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	} else {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
