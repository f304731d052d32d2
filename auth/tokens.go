package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

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
	// verified remembers tokens whose signature and claims Parse checked,
	// with their viewer and expiry: a session sends the same token with every
	// request, and decoding and checking it again is a tenth of the work of
	// answering a SOLD_OUT.
	verified *lru.Cache[string, verifiedToken]
	// revoked is checked on every use of a token, remembered or not; nil
	// (tests of tokens alone) revokes nothing.
	revoked *Revoked
	// lookup asks the shared record about a token this instance has not
	// verified yet; nil trusts revoked alone.
	lookup RevocationLookup
}

// RevocationLookup tells whether a session was revoked on any instance: the
// check of a token's first use here, when a revocation elsewhere may not
// have reached this instance's Revoked yet.
type RevocationLookup interface {
	SessionRevoked(ctx context.Context, session string) (bool, error)
}

// UseRevocations makes Parse refuse the sessions in revoked and, for tokens
// it has not verified before, those lookup knows of. Call before serving.
func (t *Tokens) UseRevocations(revoked *Revoked, lookup RevocationLookup) {
	t.revoked, t.lookup = revoked, lookup
}

// verifiedTokens bounds the tokens Parse remembers (the least recently used
// go first): some 20 MiB at most.
const verifiedTokens = 1 << 16

type verifiedToken struct {
	viewer domain.Viewer
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
	verified, err := lru.New[string, verifiedToken](verifiedTokens)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &Tokens{
		verified: verified,
		secret:   secret,
		ttl:      ttl,
		now:      now,
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
			ID:        rand.Text(), // 26 base32 characters: 130 random bits
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
// signed, still valid and not revoked, is UNAUTHENTICATED. A token verified
// before costs a cache and a map lookup; a new one may ask lookup.
func (t *Tokens) Parse(ctx context.Context, token string) (*domain.Viewer, error) {
	if v, ok := t.verified.Get(token); ok {
		if t.now().Before(v.viewer.Expires) {
			if t.revoked != nil && t.revoked.Has(v.viewer.Session) {
				return nil, errRevoked
			}
			viewer := v.viewer
			return &viewer, nil
		}
		t.verified.Remove(token) // expired: the full check below says so
	}
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
	viewer := domain.Viewer{UserID: id, Handle: c.Handle, Session: sessionID(token, c.ID), Expires: c.ExpiresAt.Time}
	if t.revoked != nil && t.revoked.Has(viewer.Session) {
		return nil, errRevoked
	}
	if t.lookup != nil {
		revoked, err := t.lookup.SessionRevoked(ctx, viewer.Session)
		if err != nil {
			return nil, err
		}
		if revoked {
			if t.revoked != nil {
				t.revoked.Add(viewer.Session, viewer.Expires)
			}
			return nil, errRevoked
		}
	}
	t.verified.Add(token, verifiedToken{viewer: viewer})
	return &viewer, nil
}

var errRevoked = domain.Errorf(domain.Unauthenticated, "your session was ended; log in again")

// sessionID is a token's session id: its jti, or for a token issued before
// tokens had one, a digest of the token itself, so it can be revoked too.
func sessionID(token, jti string) string {
	if jti != "" {
		return jti
	}
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
}
