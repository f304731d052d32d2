package payments

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"livedrops/domain"
)

// Webhook event types a provider sends.
const (
	EventSucceeded = "payment.succeeded"
	EventFailed    = "payment.failed"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
const SignatureHeader = "X-Signature"

// MaxSkew is how far a signature's timestamp may be from now; older (or
// newer) requests are refused, so a captured request cannot be replayed later.
const MaxSkew = 5 * time.Minute

const maxWebhookBody = 64 << 10

// Event is one provider notification.
type Event struct {
	// ID is the provider's event id; an id seen before changes nothing.
	ID          string `json:"id"`
	Type        string `json:"type"`
	ProviderRef string `json:"providerRef"`
	OrderID     int64  `json:"orderId"`
}

// Applier applies a provider's event to its order (orders.Service does).
type Applier interface {
	ApplyWebhook(ctx context.Context, ev Event) (duplicate bool, err error)
}

// Sign returns the X-Signature value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Webhook is the handler of POST /internal/payments/webhook. It authenticates
// each request by its HMAC signature (not the service token), so only the
// provider holding the secret can confirm or fail a payment.
type Webhook struct {
	secret []byte
	apply  Applier
	log    *slog.Logger
	// Now is the clock signatures are checked against.
	Now func() time.Time
}

// WebhookHandler returns the webhook handler applying events through apply.
func WebhookHandler(secret []byte, apply Applier, log *slog.Logger) *Webhook {
	if log == nil {
		log = slog.Default()
	}
	return &Webhook{secret: secret, apply: apply, log: log, Now: time.Now}
}

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		reply(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	if err := h.verify(r.Header.Get(SignatureHeader), body); err != nil {
		h.log.WarnContext(r.Context(), "payment webhook refused", "reason", err.Error())
		reply(w, http.StatusUnauthorized, err.Error())
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		reply(w, http.StatusBadRequest, "body is not a payment event")
		return
	}
	if msg := check(ev); msg != "" {
		reply(w, http.StatusBadRequest, msg)
		return
	}
	duplicate, err := h.apply.ApplyWebhook(r.Context(), ev)
	switch {
	case err == nil:
	case domain.ErrorCode(err) == domain.NotFound:
		reply(w, http.StatusNotFound, domain.ErrorMessage(err))
		return
	case domain.ErrorCode(err) == domain.BadUserInput || domain.ErrorCode(err) == domain.Conflict:
		reply(w, http.StatusUnprocessableEntity, domain.ErrorMessage(err))
		return
	default:
		h.log.ErrorContext(r.Context(), "payment webhook failed", "event", ev.ID, "err", err)
		reply(w, http.StatusInternalServerError, "internal error; retry later")
		return
	}
	if duplicate {
		reply(w, http.StatusOK, "duplicate")
		return
	}
	reply(w, http.StatusOK, "applied")
}

var (
	errNoSignature  = errors.New("missing or malformed signature")
	errStale        = errors.New("signature timestamp too far from now")
	errBadSignature = errors.New("signature does not match")
)

// verify checks the signature header against body: well formed, recent, and
// one of its v1 values is the HMAC (several are allowed while secrets rotate).
func (h *Webhook) verify(header string, body []byte) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errNoSignature
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return errNoSignature
			}
			sigs = append(sigs, sig)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errNoSignature
	}
	skew := h.Now().Sub(time.Unix(sec, 0))
	if skew > MaxSkew || skew < -MaxSkew {
		return errStale
	}
	want := mac(h.secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return errBadSignature
}

// check returns what is wrong with ev, or "".
func check(ev Event) string {
	switch {
	case ev.ID == "" || len(ev.ID) > 200:
		return "id must be 1 to 200 characters"
	case ev.Type != EventSucceeded && ev.Type != EventFailed:
		return "type must be " + EventSucceeded + " or " + EventFailed
	case ev.ProviderRef == "" || len(ev.ProviderRef) > 200:
		return "providerRef must be 1 to 200 characters"
	case ev.OrderID <= 0:
		return "orderId must be a positive order id"
	}
	return ""
}

func reply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"status": msg})
}
