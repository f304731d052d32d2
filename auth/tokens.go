package auth

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"livedrops/domain"
)

// Issuer is the iss claim of every token; tokens from anyone else are refused.
const Issuer = "livedrops"

// Tokens issues and verifies the signed session tokens (HS256 JWTs).
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// claims are what a token says: the standard ones plus the user's handle,
// so a request knows its viewer without reading the database.
type claims struct {
	Handle string `json:"handle"`
	jwt.RegisteredClaims
}

// NewTokens returns a Tokens signing with secret; tokens live for ttl. now is
// the clock (nil: time.Now), injectable so expiry is testable without sleeping.
func NewTokens(secret []byte, ttl time.Duration, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{
		secret: secret,
		ttl:    ttl,
		now:    now,
		parser: jwt.NewParser(
			// Pinned: a token must never choose its own algorithm ("none", or RS256 with our secret as a public key).
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(now),
		),
	}
}

// Issue returns a signed token for u and the moment it expires.
func (t *Tokens) Issue(u *domain.User) (token string, expiresAt time.Time, err error) {
	now := t.now().UTC().Truncate(time.Second) // JWT times are whole seconds
	expiresAt = now.Add(t.ttl)
	c := claims{
		Handle: u.Handle,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   strconv.FormatInt(u.ID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expiresAt),
		},
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token for user #%d: %w", u.ID, err)
	}
	return token, expiresAt, nil
}

// Parse verifies token and returns its viewer. Any token that is not one we
// signed, still valid, is UNAUTHENTICATED.
func (t *Tokens) Parse(token string) (*domain.Viewer, error) {
	var c claims
	if _, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil }); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, domain.Errorf(domain.Unauthenticated, "your session has expired; log in again")
		}
		return nil, domain.Errorf(domain.Unauthenticated, "invalid token")
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 {
		return nil, domain.Errorf(domain.Unauthenticated, "invalid token")
	}
	return &domain.Viewer{UserID: id, Handle: c.Handle}, nil
}
