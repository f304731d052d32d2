package domain

import (
	"fmt"
	"io"
	"strconv"
)

// MarshalGQL writes the status as a GraphQL enum value.
func (s DropStatus) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads a GraphQL enum value.
func (s *DropStatus) UnmarshalGQL(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("drop status must be a string")
	}
	switch DropStatus(str) {
	case DropScheduled, DropLive, DropSoldOut, DropEnded, DropCancelled:
		*s = DropStatus(str)
		return nil
	}
	return fmt.Errorf("%q is not a drop status", str)
}

// MarshalGQL writes the status as a GraphQL enum value.
func (s OrderStatus) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads a GraphQL enum value.
func (s *OrderStatus) UnmarshalGQL(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("order status must be a string")
	}
	switch OrderStatus(str) {
	case OrderPendingPayment, OrderConfirmed, OrderCancelled, OrderExpired:
		*s = OrderStatus(str)
		return nil
	}
	return fmt.Errorf("%q is not an order status", str)
}

// MarshalGQL writes the status as a GraphQL enum value.
func (s PaymentStatus) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads a GraphQL enum value.
func (s *PaymentStatus) UnmarshalGQL(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("payment status must be a string")
	}
	switch PaymentStatus(str) {
	case PaymentStatusPending, PaymentStatusSucceeded, PaymentStatusDeclined:
		*s = PaymentStatus(str)
		return nil
	}
	return fmt.Errorf("%q is not a payment status", str)
}

// MarshalGQL writes the kind as a GraphQL enum value.
func (k NotificationKind) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(k))) }

// UnmarshalGQL reads a GraphQL enum value.
func (k *NotificationKind) UnmarshalGQL(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("notification kind must be a string")
	}
	switch NotificationKind(str) {
	case NotificationDropScheduled, NotificationDropStarted:
		*k = NotificationKind(str)
		return nil
	}
	return fmt.Errorf("%q is not a notification kind", str)
}
