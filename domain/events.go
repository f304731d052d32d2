package domain

import (
	"encoding/json"
	"time"
)

// Event types. Each state change writes its events to the outbox in the
// transaction of the change.
const (
	EventDropScheduled       = "DropScheduled"
	EventDropStarted         = "DropStarted"
	EventStockChanged        = "StockChanged"
	EventStockLow            = "StockLow"
	EventSoldOut             = "SoldOut"
	EventDropEnded           = "DropEnded"
	EventDropCancelled       = "DropCancelled"
	EventOrderPlaced         = "OrderPlaced"
	EventOrderConfirmed      = "OrderConfirmed"
	EventOrderCancelled      = "OrderCancelled"
	EventOrderExpired        = "OrderExpired"
	EventNotificationCreated = "NotificationCreated"
	EventProductUpdated      = "ProductUpdated"
	EventCreatorUpdated      = "CreatorUpdated"
	// EventSessionRevoked tells every instance a session was ended (logOut).
	EventSessionRevoked = "SessionRevoked"
)

// SessionPayload is the payload of SessionRevoked: the session (a token's
// jti) and when its token expires, after which nobody needs to remember it.
type SessionPayload struct {
	Session   string    `json:"session" db:"session"`
	ExpiresAt time.Time `json:"expiresAt" db:"expires_at"`
}

// Event is the envelope every event travels in, on the bus and in the outbox.
// Key is the partition key: the drop id for drop, stock and order events, so a
// drop's events keep their order.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurredAt"`
	Key        string          `json:"key"`
	Payload    json.RawMessage `json:"payload"`
}

// DropPayload is the payload of the drop lifecycle events.
type DropPayload struct {
	DropID    int64      `json:"dropId"`
	CreatorID int64      `json:"creatorId"`
	ProductID int64      `json:"productId"`
	Status    DropStatus `json:"status"`
	StartsAt  time.Time  `json:"startsAt"`
	EndsAt    time.Time  `json:"endsAt"`
	// Version is the drop row's version after the change.
	Version int64 `json:"version"`
}

// StockPayload is the payload of StockChanged, StockLow and SoldOut: the
// stock after the change, its version and the drop's status after it.
type StockPayload struct {
	DropID    int64      `json:"dropId"`
	CreatorID int64      `json:"creatorId"`
	Total     int        `json:"total"`
	Available int        `json:"available"`
	Reserved  int        `json:"reserved"`
	Sold      int        `json:"sold"`
	Version   int64      `json:"version"`
	Status    DropStatus `json:"status"`
	// DropVersion is the drop row's version that Status comes from.
	DropVersion int64 `json:"dropVersion"`
}

// OrderPayload is the payload of the order events.
type OrderPayload struct {
	OrderID  int64       `json:"orderId"`
	DropID   int64       `json:"dropId"`
	BuyerID  int64       `json:"buyerId"`
	Quantity int         `json:"quantity"`
	Status   OrderStatus `json:"status"`
}

// ProductPayload is the payload of ProductUpdated.
type ProductPayload struct {
	ProductID int64 `json:"productId"`
	CreatorID int64 `json:"creatorId"`
	// Version is the product's version after the change.
	Version int64 `json:"version"`
}

// CreatorPayload is the payload of CreatorUpdated: the creator's follower
// count after a follow, an unfollow or its creation, and the row's version
// with it. UserID is the user whose act it was: the follower, or the owner of
// a new creator (Created).
type CreatorPayload struct {
	CreatorID     int64 `json:"creatorId"`
	FollowerCount int64 `json:"followerCount"`
	Version       int64 `json:"version"`
	UserID        int64 `json:"userId,omitempty"`
	Created       bool  `json:"created,omitempty"`
}

// NotificationPayload is the payload of NotificationCreated.
type NotificationPayload struct {
	NotificationID int64            `json:"notificationId"`
	UserID         int64            `json:"userId"`
	Kind           NotificationKind `json:"kind"`
	DropID         int64            `json:"dropId"`
}
