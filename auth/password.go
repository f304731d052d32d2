// Package auth proves who is asking: password hashes for logging in, signed
// tokens for every request after, and the HTTP middleware that reads them.
package auth

import (
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

// HashPassword returns the argon2id hash of pw in the PHC string format.
func HashPassword(pw string) (string, error) {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	h, err := argon2id.CreateHash(pw, hashParams)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return h, nil
}

// CheckPassword reports whether pw matches hash, in constant time. A hash that
// cannot be decoded is an error, not a mismatch.
func CheckPassword(pw, hash string) (bool, error) {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	ok, err := argon2id.ComparePasswordAndHash(pw, hash)
	if err != nil {
		return false, fmt.Errorf("auth: check password: %w", err)
	}
	return ok, nil
}
