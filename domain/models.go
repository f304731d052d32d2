package domain

import "time"

// User is an account. Its handle is unique, compared case-insensitively.
type User struct {
	ID           int64     `db:"id"`
	Handle       string    `db:"handle"`
	DisplayName  string    `db:"display_name"`
	PasswordHash string    `db:"password_hash" json:"-"`
	CreatedAt    time.Time `db:"created_at"`
}

// Creator is a user who sells; one per user. Handle is the user's.
type Creator struct {
	ID            int64     `db:"id"`
	UserID        int64     `db:"user_id"`
	Handle        string    `db:"handle"`
	DisplayName   string    `db:"display_name"`
	Bio           string    `db:"bio"`
	FollowerCount int64     `db:"follower_count"`
	CreatedAt     time.Time `db:"created_at"`
	// Version grows with every change of the row (a follow moves the count).
	Version int64 `db:"version"`
}

// Product is a creator's item for sale. Prices are in minor units.
type Product struct {
	ID          int64     `db:"id"`
	CreatorID   int64     `db:"creator_id"`
	Title       string    `db:"title"`
	Description string    `db:"description"`
	PriceCents  int64     `db:"price_cents"`
	Currency    string    `db:"currency"`
	CreatedAt   time.Time `db:"created_at"`
	UpdatedAt   time.Time `db:"updated_at"`
	// Version grows with every change of the product or of its media list.
	Version int64 `db:"version"`
}

// Media is a file attached to a product, stored in S3 under Key.
type Media struct {
	ID          int64     `db:"id"`
	ProductID   int64     `db:"product_id"`
	Key         string    `db:"object_key"`
	ContentType string    `db:"content_type"`
	ByteSize    int64     `db:"byte_size"`
	Checksum    string    `db:"checksum"`
	CreatedAt   time.Time `db:"created_at"`
}

// DropStatus is a drop's place in its life: SCHEDULED → LIVE → SOLD_OUT / ENDED / CANCELLED.
type DropStatus string

const (
	DropScheduled DropStatus = "SCHEDULED"
	DropLive      DropStatus = "LIVE"
	DropSoldOut   DropStatus = "SOLD_OUT"
	DropEnded     DropStatus = "ENDED"
	DropCancelled DropStatus = "CANCELLED"
)

// Drop is a timed sale of a limited stock of one product.
type Drop struct {
	ID           int64      `db:"id"`
	ProductID    int64      `db:"product_id"`
	CreatorID    int64      `db:"creator_id"`
	Title        string     `db:"title"`
	Status       DropStatus `db:"status"`
	StartsAt     time.Time  `db:"starts_at"`
	EndsAt       time.Time  `db:"ends_at"`
	PerUserLimit int        `db:"per_user_limit"`
	CreatedAt    time.Time  `db:"created_at"`
	UpdatedAt    time.Time  `db:"updated_at"`
	// Version grows with every change of the row (status, window), apart
	// from the stock's own version.
	Version int64 `db:"version"`
}

// DropState is a drop with its stock, read together.
type DropState struct {
	Drop  Drop
	Stock Stock
}

// Stock is a drop's inventory; Available + Reserved + Sold = Total always.
type Stock struct {
	DropID    int64 `db:"drop_id"`
	Total     int   `db:"total"`
	Available int   `db:"available"`
	Reserved  int   `db:"reserved"`
	Sold      int   `db:"sold"`
	// Version grows with every change, so a newer state is told from an older one.
	Version int64 `db:"version"`
}

// OrderStatus is an order's place in its life: PENDING_PAYMENT → CONFIRMED / CANCELLED / EXPIRED.
type OrderStatus string

const (
	OrderPendingPayment OrderStatus = "PENDING_PAYMENT"
	OrderConfirmed      OrderStatus = "CONFIRMED"
	OrderCancelled      OrderStatus = "CANCELLED"
	OrderExpired        OrderStatus = "EXPIRED"
)

// Order is a buyer's reservation of stock in a drop, confirmed by payment.
type Order struct {
	ID             int64       `db:"id"`
	DropID         int64       `db:"drop_id"`
	BuyerID        int64       `db:"buyer_id"`
	Quantity       int         `db:"quantity"`
	TotalCents     int64       `db:"total_cents"`
	Currency       string      `db:"currency"`
	Status         OrderStatus `db:"status"`
	IdempotencyKey string      `db:"idempotency_key"`
	RequestHash    string      `db:"request_hash" json:"-"`
	CreatedAt      time.Time   `db:"created_at"`
	UpdatedAt      time.Time   `db:"updated_at"`
	ExpiresAt      time.Time   `db:"expires_at"`
}

// PaymentStatus is the provider's word on a payment.
type PaymentStatus string

const (
	PaymentStatusPending   PaymentStatus = "PENDING"
	PaymentStatusSucceeded PaymentStatus = "SUCCEEDED"
	PaymentStatusDeclined  PaymentStatus = "DECLINED"
)

// Payment is one attempt to pay an order through the provider.
type Payment struct {
	ID          int64         `db:"id"`
	OrderID     int64         `db:"order_id"`
	Provider    string        `db:"provider"`
	ProviderRef string        `db:"provider_ref"`
	Status      PaymentStatus `db:"status"`
	AmountCents int64         `db:"amount_cents"`
	CreatedAt   time.Time     `db:"created_at"`
	UpdatedAt   time.Time     `db:"updated_at"`
}

// NotificationKind says what a notification is about.
type NotificationKind string

const (
	NotificationDropScheduled NotificationKind = "DROP_SCHEDULED"
	NotificationDropStarted   NotificationKind = "DROP_STARTED"
)

// Notification tells a follower about a creator's drop.
type Notification struct {
	ID        int64            `db:"id"`
	UserID    int64            `db:"user_id"`
	Kind      NotificationKind `db:"kind"`
	DropID    int64            `db:"drop_id"`
	CreatorID int64            `db:"creator_id"`
	CreatedAt time.Time        `db:"created_at"`
	ReadAt    *time.Time       `db:"read_at"`
}
