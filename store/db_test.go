package store

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/lib/pq"

	"livedrops/domain"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"serialization failure", &pq.Error{Code: "40001"}, true},
		{"deadlock", &pq.Error{Code: "40P01"}, true},
		{"connection failure", &pq.Error{Code: "08006"}, true},
		{"backend terminated", &pq.Error{Code: "57P01"}, true},
		{"wrapped", fmt.Errorf("store: read: %w", &pq.Error{Code: "40001"}), true},
		{"bad connection", fmt.Errorf("store: begin: %w", driver.ErrBadConn), true},
		{"connection closed", io.ErrUnexpectedEOF, true},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"cancelled", &pq.Error{Code: "57014"}, false},
		{"bad text", &pq.Error{Code: "22021"}, false},
		{"check violation", &pq.Error{Code: "23514"}, false},
		{"domain error", domain.Errorf(domain.SoldOut, "sold out"), false},
		{"other", errors.New("boom"), false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient = %v, want %v", tc.name, got, tc.want)
		}
	}
}
