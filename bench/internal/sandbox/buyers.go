package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"livedrops/auth"
	"livedrops/domain"
)

// Buyer is an account the load generator orders as.
type Buyer struct {
	ID     int64
	Handle string
	// Token is a bearer token signed with the sandbox's JWT secret.
	Token string
}

// AddBuyers writes n buyer accounts in one statement and mints each a token.
// Buyers are benchmark fixtures: one INSERT of n rows instead of n sign-ups,
// whose password hashing is slow by design. Their password hash matches no
// password, so nobody can log in as them.
func (s *Sandbox) AddBuyers(ctx context.Context, db *sql.DB, n int) ([]Buyer, error) {
	rows, err := db.QueryContext(ctx, `INSERT INTO users (handle, display_name, password_hash)
		SELECT 'buyer_' || g, 'Buyer ' || g, '!' FROM generate_series(1, $1) AS g
		RETURNING id, handle`, n)
	if err != nil {
		return nil, fmt.Errorf("sandbox: insert %d buyers: %w", n, err)
	}
	defer rows.Close()
	buyers := make([]Buyer, 0, n)
	for rows.Next() {
		var b Buyer
		if err := rows.Scan(&b.ID, &b.Handle); err != nil {
			return nil, fmt.Errorf("sandbox: read inserted buyer: %w", err)
		}
		buyers = append(buyers, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: read inserted buyers: %w", err)
	}
	tokens := auth.NewTokens([]byte(s.JWTSecret), 2*time.Hour, time.Now)
	for i := range buyers {
		tok, _, err := tokens.Issue(&domain.User{ID: buyers[i].ID, Handle: buyers[i].Handle})
		if err != nil {
			return nil, fmt.Errorf("sandbox: token for buyer %s: %w", buyers[i].Handle, err)
		}
		buyers[i].Token = tok
	}
	return buyers, nil
}
