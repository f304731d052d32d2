// Package auth proves who is asking: password hashes for logging in, signed
// tokens for every request after, and the HTTP middleware that reads them.
package auth

import (
	"context"
	"fmt"
	"runtime"

	"github.com/alexedwards/argon2id"
)

// hashParams are argon2id's settings. 64 MiB and one pass exceed OWASP's
// minimum (46 MiB, t=1) and take about 0.1 s on a small server; they are
// pinned, not taken from DefaultParams, so a hash does not depend on the
// machine's core count.
var hashParams = &argon2id.Params{
	Memory:      64 * 1024,
	Iterations:  1,
	Parallelism: 2,
	SaltLength:  16,
	KeyLength:   32,
}

// hashSlots caps concurrent hashes: each holds 64 MiB, and a burst of sign-ups
// must not exhaust memory when more hashes at once would not finish sooner.
var hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// takeSlot waits for a hash slot, giving up when ctx ends: a client that has
// gone away must not keep a queued hash.
func takeSlot(ctx context.Context) (release func(), err error) {
	select {
	case hashSlots <- struct{}{}:
		return func() { <-hashSlots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("auth: wait for a password hash slot: %w", context.Cause(ctx))
	}
}

// HashPassword returns the argon2id hash of pw in the PHC string format.
func HashPassword(ctx context.Context, pw string) (string, error) {
	release, err := takeSlot(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	h, err := argon2id.CreateHash(pw, hashParams)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return h, nil
}

// CheckPassword reports whether pw matches hash, in constant time. A hash that
// cannot be decoded is an error, not a mismatch.
func CheckPassword(ctx context.Context, pw, hash string) (bool, error) {
	release, err := takeSlot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	ok, err := argon2id.ComparePasswordAndHash(pw, hash)
	if err != nil {
		return false, fmt.Errorf("auth: check password: %w", err)
	}
	return ok, nil
}
