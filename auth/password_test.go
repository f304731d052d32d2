package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPassword(t *testing.T) {
	h1, err := HashPassword(context.Background(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword(context.Background(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=65536,t=1,p=2$") {
		t.Fatalf("hash %q does not carry the pinned parameters", h1)
	}
	tests := []struct {
		pw, hash string
		want     bool
		wantErr  bool
	}{
		{"correct horse battery staple", h1, true, false},
		{"correct horse battery staple", h2, true, false},
		{"correct horse battery stapl", h1, false, false},
		{"", h1, false, false},
		{"anything", "not a hash", false, true},
		{"anything", "", false, true},
	}
	for _, tc := range tests {
		ok, err := CheckPassword(context.Background(), tc.pw, tc.hash)
		if ok != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("CheckPassword(%q, %q) = %v, %v; want %v, error %v", tc.pw, tc.hash, ok, err, tc.want, tc.wantErr)
		}
	}
}

// A hash waiting for a slot gives up when its request is cancelled.
func TestHashWaitRespectsCancel(t *testing.T) {
	for range cap(hashSlots) {
		hashSlots <- struct{}{}
	}
	defer func() {
		for range cap(hashSlots) {
			<-hashSlots
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := HashPassword(ctx, "correct horse battery staple"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("HashPassword with every slot taken = %v; want the context's deadline", err)
	}
	if _, err := CheckPassword(ctx, "x", "y"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CheckPassword with every slot taken = %v; want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %s", d)
	}
}
