package resolvers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"livedrops/domain"
)

// inStream runs f inside a request that went through Streams.
func inStream(t *testing.T, f func(ctx context.Context)) {
	t.Helper()
	ran := false
	Streams(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ran = true
		f(r.Context())
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/query", nil))
	if !ran {
		t.Fatal("Streams did not call the handler")
	}
}

func TestStreamCapsSubscriptions(t *testing.T) {
	inStream(t, func(ctx context.Context) {
		subs := make([]context.CancelFunc, MaxSubscriptionsPerStream)
		for i := range subs {
			var sub context.Context
			sub, subs[i] = context.WithCancel(ctx)
			if err := openSubscription(sub); err != nil {
				t.Fatalf("subscription %d: %v", i+1, err)
			}
		}
		extra, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := openSubscription(extra); domain.ErrorCode(err) != domain.LimitExceeded {
			t.Fatalf("subscription over the cap: %v, want LIMIT_EXCEEDED", err)
		}
		// Stopping one makes room at once, for the very next subscription.
		subs[7]()
		if err := openSubscription(extra); err != nil {
			t.Fatalf("subscription after a stop: %v", err)
		}
		if err := openSubscription(extra); domain.ErrorCode(err) != domain.LimitExceeded {
			t.Fatalf("subscription over the cap again: %v, want LIMIT_EXCEEDED", err)
		}
		for _, c := range subs {
			c()
		}
	})
}

func TestEndStreamEndsTheRequest(t *testing.T) {
	inStream(t, func(ctx context.Context) {
		sub, cancel := context.WithCancel(ctx)
		defer cancel()
		EndStream(sub, "drop")
		if !errors.Is(context.Cause(ctx), ErrSlowStream) || sub.Err() == nil {
			t.Fatalf("after EndStream: request cause %v, subscription %v", context.Cause(ctx), sub.Err())
		}
	})
	// Outside a stream (no Streams middleware) it does nothing.
	EndStream(context.Background(), "drop")
	if err := openSubscription(context.Background()); err != nil {
		t.Fatalf("subscription outside a stream: %v", err)
	}
}
