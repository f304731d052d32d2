package accounts

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"livedrops/config"
	"livedrops/domain"
	"livedrops/ratelimit"
)

// Limits bound how often one client may make the service hash a password:
// log-ins and sign-ups per client address, and a lockout of a handle after
// log-ins that did not succeed, doubling while they go on. Unknown handles
// lock like known ones, so a lock tells nothing about who has an account.
type Limits struct {
	rates    *ratelimit.Limiter
	logIn    ratelimit.Rate
	signUp   ratelimit.Rate
	failures *ratelimit.Lockout
}

// Lockout timings: from the last free try, tries no more than failureWindow
// apart, the first lock lasts firstLock, each try after it doubles it, up to
// longestLock.
const (
	failureWindow = 15 * time.Minute
	firstLock     = time.Minute
	longestLock   = time.Hour
)

// NewLimits returns the limits of cfg, kept in rdb under prefix (shared by
// every instance). When Redis cannot answer they let requests through, and
// the bound on concurrent hashes (auth) is what is left.
func NewLimits(rdb redis.UniversalClient, prefix string, cfg config.Abuse) *Limits {
	return &Limits{
		rates:  ratelimit.New(rdb, prefix),
		logIn:  ratelimit.Rate{Name: "login", Per: cfg.LogInRatePerAddress, Period: time.Minute},
		signUp: ratelimit.Rate{Name: "signup", Per: cfg.SignUpRatePerAddress, Period: time.Hour},
		failures: ratelimit.NewLockout(rdb, prefix, ratelimit.Lockout{
			Name: "login-tries", Free: cfg.LogInFailuresPerHandle,
			Window: failureWindow, First: firstLock, Longest: longestLock,
		}),
	}
}

// allowLogIn refuses a log-in from an address over its rate, or for a handle
// that is locked, whatever the password; otherwise it counts the try.
func (l *Limits) allowLogIn(ctx context.Context, handle string) error {
	if l == nil {
		return nil
	}
	if a := domain.ClientAddr(ctx); a.IsValid() {
		if err := l.rates.Allow(ctx, l.logIn, ratelimit.AddrKey(a), "too many log-ins from this address"); err != nil {
			return err
		}
	}
	if len(handle) > maxHandle {
		return nil // no account has it, and Redis keys stay small
	}
	return l.failures.Try(ctx, handleKey(handle), "too many failed log-ins for this handle")
}

// loggedIn forgets the tries of a handle that has just logged in.
func (l *Limits) loggedIn(ctx context.Context, handle string) {
	if l == nil || len(handle) > maxHandle {
		return
	}
	l.failures.Clear(ctx, handleKey(handle))
}

// allowSignUp refuses a sign-up from an address over its rate.
func (l *Limits) allowSignUp(ctx context.Context) error {
	if l == nil {
		return nil
	}
	if a := domain.ClientAddr(ctx); a.IsValid() {
		return l.rates.Allow(ctx, l.signUp, ratelimit.AddrKey(a), "too many sign-ups from this address")
	}
	return nil
}

// handleKey is how a handle is counted: in any letter case, as logging in
// accepts it.
func handleKey(handle string) string { return strings.ToLower(handle) }
