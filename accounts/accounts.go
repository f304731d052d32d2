// Package accounts holds the rules of who may join, log in, sell and follow:
// the inputs it accepts and the errors a client sees.
package accounts

import (
	"context"
	"fmt"
	"sync"
	"time"

	"livedrops/auth"
	"livedrops/cache"
	"livedrops/domain"
	"livedrops/store"
)

// Service signs users up and in, makes creators and keeps follows.
type Service struct {
	db     *store.DB
	tokens *auth.Tokens
	cache  *cache.Cache
	limits *Limits
}

// New returns the accounts service. c may be nil (no cache to keep fresh),
// and so may limits (no limits on logging in and signing up).
func New(db *store.DB, tokens *auth.Tokens, c *cache.Cache, limits *Limits) *Service {
	return &Service{db: db, tokens: tokens, cache: c, limits: limits}
}

// AuthResult is what signing up or logging in gives: a session token and its user.
type AuthResult struct {
	Token     string
	ExpiresAt time.Time
	User      *domain.User
}

// errWrongLogin is the one answer to a failed log-in, so it never tells
// whether the handle exists.
var errWrongLogin = domain.Errorf(domain.Unauthenticated, "wrong handle or password")

// dummyHash is checked against when the handle is unknown, so a failed log-in
// takes as long whether or not the account exists.
var dummyHash = sync.OnceValues(func() (string, error) {
	return auth.HashPassword(context.Background(), "no account has this password")
})

// SignUp creates an account and logs it in; the client address's sign-up
// rate is checked before the password is hashed.
func (s *Service) SignUp(ctx context.Context, handle, password, displayName string) (*AuthResult, error) {
	displayName, err := checkSignUp(handle, password, displayName)
	if err != nil {
		return nil, err
	}
	if err := s.limits.allowSignUp(ctx); err != nil {
		return nil, err
	}
	hash, err := auth.HashPassword(ctx, password)
	if err != nil {
		return nil, fmt.Errorf("accounts: sign up %q: %w", handle, err)
	}
	u, err := s.db.CreateUser(ctx, handle, displayName, hash)
	if err != nil {
		return nil, err
	}
	return s.session(u)
}

// LogIn checks a handle (in any letter case) and password and starts a
// session. The limits come first: a refused log-in is RATE_LIMITED whether
// or not its password is right, and costs no hash.
func (s *Service) LogIn(ctx context.Context, handle, password string) (*AuthResult, error) {
	if err := s.limits.allowLogIn(ctx, handle); err != nil {
		return nil, err
	}
	u, err := s.checkLogIn(ctx, handle, password)
	if err != nil {
		return nil, err
	}
	s.limits.loggedIn(ctx, handle)
	return s.session(u)
}

// checkLogIn returns the user whose handle and password these are, or
// errWrongLogin, taking as long for a handle nobody has.
func (s *Service) checkLogIn(ctx context.Context, handle, password string) (*domain.User, error) {
	if len(handle) > maxHandle || checkPassword(password) != nil {
		return nil, errWrongLogin // no account has such a handle or password: nothing to hash
	}
	u, err := s.db.UserByHandle(ctx, handle)
	if domain.ErrorCode(err) == domain.NotFound {
		hash, err := dummyHash()
		if err != nil {
			return nil, fmt.Errorf("accounts: log in: %w", err)
		}
		if _, err := auth.CheckPassword(ctx, password, hash); err != nil {
			return nil, fmt.Errorf("accounts: log in: %w", err)
		}
		return nil, errWrongLogin
	}
	if err != nil {
		return nil, err
	}
	ok, err := auth.CheckPassword(ctx, password, u.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("accounts: log in user #%d: %w", u.ID, err)
	}
	if !ok {
		return nil, errWrongLogin
	}
	u.PasswordHash = "" // it goes no further than this check
	return u, nil
}

func (s *Service) session(u *domain.User) (*AuthResult, error) {
	token, exp, err := s.tokens.Issue(u)
	if err != nil {
		return nil, fmt.Errorf("accounts: start session: %w", err)
	}
	return &AuthResult{Token: token, ExpiresAt: exp, User: u}, nil
}

// BecomeCreator makes the user a creator; a second time is CONFLICT.
func (s *Service) BecomeCreator(ctx context.Context, userID int64, displayName, bio string) (*domain.Creator, error) {
	if err := signedIn(userID); err != nil {
		return nil, err
	}
	displayName, bio, err := checkCreator(displayName, bio)
	if err != nil {
		return nil, err
	}
	return s.db.CreateCreator(ctx, userID, displayName, bio)
}

// Follow makes the user follow the creator; following again changes nothing.
func (s *Service) Follow(ctx context.Context, userID, creatorID int64) (*domain.Creator, error) {
	if err := signedIn(userID); err != nil {
		return nil, err
	}
	c, err := s.db.Follow(ctx, creatorID, userID)
	return s.evictCreator(ctx, c, err)
}

// Unfollow undoes Follow; unfollowing a creator not followed changes nothing.
func (s *Service) Unfollow(ctx context.Context, userID, creatorID int64) (*domain.Creator, error) {
	if err := signedIn(userID); err != nil {
		return nil, err
	}
	c, err := s.db.Unfollow(ctx, creatorID, userID)
	return s.evictCreator(ctx, c, err)
}

// evictCreator drops a creator whose follower count changed from the cache, so
// the next read is fresh. A failed eviction is no failed follow: the TTL bounds
// how long a stale count can live.
func (s *Service) evictCreator(ctx context.Context, c *domain.Creator, err error) (*domain.Creator, error) {
	if err == nil {
		_ = s.cache.Evict(context.WithoutCancel(ctx), cache.KindCreator, c.ID)
	}
	return c, err
}

// signedIn refuses a missing user id: a caller that forgot to require a viewer.
func signedIn(userID int64) error {
	if userID <= 0 {
		return domain.Errorf(domain.Unauthenticated, "sign in first")
	}
	return nil
}
