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
}

// NotificationPayload is the payload of NotificationCreated.
type NotificationPayload struct {
	NotificationID int64            `json:"notificationId"`
	UserID         int64            `json:"userId"`
	Kind           NotificationKind `json:"kind"`
	DropID         int64            `json:"dropId"`
}
