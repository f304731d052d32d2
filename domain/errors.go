// Package domain holds the types and the error vocabulary every layer of Live
// Drops shares: the store, the services, the resolvers and the transports.
package domain

import (
	"errors"
	"fmt"
)

// Error codes. Each is what a client sees in extensions.code.
const (
	Unauthenticated      = "UNAUTHENTICATED"
	Forbidden            = "FORBIDDEN"
	NotFound             = "NOT_FOUND"
	BadUserInput         = "BAD_USER_INPUT"
	Conflict             = "CONFLICT" // a state that forbids the change (a wrong drop transition)
	SoldOut              = "SOLD_OUT"
	DropNotLive          = "DROP_NOT_LIVE"
	LimitExceeded        = "LIMIT_EXCEEDED"
	IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	PaymentDeclined      = "PAYMENT_DECLINED"
	RateLimited          = "RATE_LIMITED"
	Internal             = "INTERNAL"
)

// Error is an error a client may see: a code and a message written for people.
// Anything that is not an *Error reaching a transport is internal.
type Error struct {
	Code    string
	Message string
	// Field names the input at fault, when there is one.
	Field string
	// Extensions are extra facts for the client (retryAfter for RATE_LIMITED).
	Extensions map[string]any
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidInput returns a BAD_USER_INPUT error naming the field at fault.
func InvalidInput(field, format string, args ...any) *Error {
	return &Error{Code: BadUserInput, Message: fmt.Sprintf(format, args...), Field: field}
}

// ErrorCode returns the code of err, or INTERNAL when err carries none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the message of err a client may see; internal errors
// get a bland one, so no detail leaks.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
