package auth

import (
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	h1, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword("correct horse battery staple")
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
		ok, err := CheckPassword(tc.pw, tc.hash)
		if ok != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("CheckPassword(%q, %q) = %v, %v; want %v, error %v", tc.pw, tc.hash, ok, err, tc.want, tc.wantErr)
		}
	}
}
