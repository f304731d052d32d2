// Package internalapi serves the HTTP endpoints under /internal/ that other
// services call, never the public: inventory adjustment and cache
// invalidation (bearer service token), and the payment provider's webhook
// (HMAC signature instead).
package internalapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"livedrops/domain"
	"livedrops/drops"
	"livedrops/orders"
	"livedrops/payments"
	"livedrops/respcache"
	"livedrops/store"
)

// Evicter drops cached values by kind and id ((*cache.Cache).Evict).
type Evicter interface {
	Evict(ctx context.Context, kind string, ids ...int64) error
}

// ResponseEvicter drops cached responses by tag ((*respcache.Cache).Evict).
type ResponseEvicter interface {
	Evict(tags ...string)
}

// Options wire the internal API.
type Options struct {
	// DB is the store; kept for endpoints that read it directly.
	DB     *store.DB
	Drops  *drops.Service
	Orders *orders.Service
	Cache  Evicter
	// Responses, when set, is evicted at once by an inventory adjustment
	// (other instances wait for its event).
	Responses ResponseEvicter
	// Token is the service token callers send as "Authorization: Bearer <token>".
	Token string
	// WebhookSecret signs the payment provider's webhooks.
	WebhookSecret []byte
	Log           *slog.Logger
}

// Limits of one request.
const (
	maxBody     = 1 << 20
	maxEvictIDs = 1000
)

// New returns the handler of every path under /internal/ (full paths: mount
// it at "/internal/" without stripping the prefix).
func New(o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	a := &api{o: o, tokenSum: sha256.Sum256([]byte(o.Token))}
	mux := http.NewServeMux()
	mux.Handle("POST /internal/inventory/adjust", a.authorized(a.adjust))
	mux.Handle("POST /internal/cache/invalidate", a.authorized(a.invalidate))
	if o.Orders != nil {
		var apply payments.Applier = o.Orders
		if o.Responses != nil && o.DB != nil {
			apply = evictingApplier{next: o.Orders, db: o.DB, responses: o.Responses}
		}
		mux.Handle("/internal/payments/webhook", payments.WebhookHandler(o.WebhookSecret, apply, o.Log))
	}
	mux.Handle("/internal/", a.authorized(func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, map[string]string{"error": "no such internal endpoint"})
	}))
	return mux
}

type api struct {
	o        Options
	tokenSum [32]byte
}

// authorized lets through only requests bearing the service token. Digests
// are compared in constant time, so neither the token nor its length leaks.
func (a *api) authorized(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(given))
		if !ok || a.o.Token == "" || subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="internal"`)
			reply(w, http.StatusUnauthorized, map[string]string{"error": "a valid service token is required"})
			return
		}
		next(w, r)
	})
}

// adjustRequest is POST /internal/inventory/adjust. DropID is a number or a
// global Drop id; Delta adds units (negative: removes available ones).
type adjustRequest struct {
	DropID json.RawMessage `json:"dropId"`
	Delta  int             `json:"delta"`
}

func (a *api) adjust(w http.ResponseWriter, r *http.Request) {
	var req adjustRequest
	if !decode(w, r, &req) {
		return
	}
	dropID, err := parseDropID(req.DropID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d, stock, err := a.o.Drops.Adjust(r.Context(), dropID, req.Delta)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.o.Responses != nil {
		a.o.Responses.Evict(respcache.DropTags(d.ID, d.CreatorID, d.ProductID)...)
	}
	a.o.Log.InfoContext(r.Context(), "internal: inventory adjusted", "drop", dropID, "delta", req.Delta, "available", stock.Available)
	reply(w, http.StatusOK, map[string]any{
		"dropId": d.ID, "status": d.Status,
		"stock": map[string]int{"total": stock.Total, "available": stock.Available, "reserved": stock.Reserved, "sold": stock.Sold},
	})
}

// parseDropID reads a drop id given as a number or as a global id.
func parseDropID(raw json.RawMessage) (int64, error) {
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil && n > 0 {
		return n, nil
	}
	var gid string
	if err := json.Unmarshal(raw, &gid); err == nil {
		id, err := domain.ParseID(gid, domain.TypeDrop)
		if err != nil {
			return 0, domain.InvalidInput("dropId", "dropId is not a drop id")
		}
		return id, nil
	}
	return 0, domain.InvalidInput("dropId", "dropId must be a positive number or a drop's global id")
}

// invalidateRequest is POST /internal/cache/invalidate.
type invalidateRequest struct {
	Kind string  `json:"kind"`
	IDs  []int64 `json:"ids"`
}

func (a *api) invalidate(w http.ResponseWriter, r *http.Request) {
	var req invalidateRequest
	if !decode(w, r, &req) {
		return
	}
	if !validKind(req.Kind) {
		a.fail(w, r, domain.InvalidInput("kind", "kind must be 1 to 64 lower-case letters, digits or underscores"))
		return
	}
	if len(req.IDs) == 0 || len(req.IDs) > maxEvictIDs {
		a.fail(w, r, domain.InvalidInput("ids", "give 1 to %d ids", maxEvictIDs))
		return
	}
	for _, id := range req.IDs {
		if id <= 0 {
			a.fail(w, r, domain.InvalidInput("ids", "ids must be positive"))
			return
		}
	}
	if a.o.Cache != nil {
		if err := a.o.Cache.Evict(r.Context(), req.Kind, req.IDs...); err != nil {
			a.fail(w, r, fmt.Errorf("internalapi: evict %d %s values: %w", len(req.IDs), req.Kind, err))
			return
		}
	}
	if a.o.Responses != nil {
		// Responses are tagged by entity: "product_media" values belong to "product:ID".
		entity, _, _ := strings.Cut(req.Kind, "_")
		tags := make([]string, len(req.IDs))
		for i, id := range req.IDs {
			tags[i] = entity + ":" + strconv.FormatInt(id, 10)
		}
		a.o.Responses.Evict(tags...)
	}
	reply(w, http.StatusOK, map[string]any{"kind": req.Kind, "evicted": len(req.IDs)})
}

func validKind(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// decode reads a JSON body of at most maxBody bytes with no unknown fields,
// answering 400 itself when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		reply(w, http.StatusBadRequest, map[string]string{"error": "the body is not the expected JSON: " + err.Error()})
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		reply(w, http.StatusBadRequest, map[string]string{"error": "the body holds more than one JSON value"})
		return false
	}
	return true
}

// fail answers err with the status its code calls for; internal errors are
// logged and answered blandly.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	switch domain.ErrorCode(err) {
	case domain.BadUserInput:
		status = http.StatusBadRequest
	case domain.NotFound:
		status = http.StatusNotFound
	case domain.Conflict:
		status = http.StatusConflict
	case domain.Forbidden:
		status = http.StatusForbidden
	default:
		a.o.Log.ErrorContext(r.Context(), "internal API request failed", "path", r.URL.Path, "err", err)
	}
	body := map[string]string{"error": domain.ErrorMessage(err), "code": domain.ErrorCode(err)}
	var de *domain.Error
	if errors.As(err, &de) && de.Field != "" {
		body["field"] = de.Field
	}
	reply(w, status, body)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// evictingApplier evicts the paid order's drop from the response cache once
// a webhook changed its stock (other instances wait for the event).
type evictingApplier struct {
	next      payments.Applier
	db        *store.DB
	responses ResponseEvicter
}

func (a evictingApplier) ApplyWebhook(ctx context.Context, ev payments.Event) (bool, error) {
	duplicate, err := a.next.ApplyWebhook(ctx, ev)
	if err != nil || duplicate {
		return duplicate, err
	}
	if os, err := a.db.OrdersByIDs(ctx, []int64{ev.OrderID}); err == nil && len(os) == 1 {
		a.responses.Evict(respcache.DropTag(os[0].DropID), respcache.ListDrops, respcache.ListLiveDrops)
	}
	return false, nil
}
