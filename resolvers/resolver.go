// Package resolvers answers GraphQL fields. Resolvers are thin: they read who is
// asking, decode ids, load through the per-request dataloaders or call one
// service method, and return. The rules live in the services.
package resolvers

import (
	"livedrops/accounts"
	"livedrops/catalog"
	"livedrops/drops"
	"livedrops/live"
	"livedrops/orders"
	"livedrops/store"
)

// Resolver holds what every resolver needs.
type Resolver struct {
	DB           *store.DB
	Accounts     *accounts.Service
	Sessions     *accounts.Sessions
	Catalog      *catalog.Service
	DropService  *drops.Service
	OrderService *orders.Service
	// Hub is this instance's live hub: every subscription is one of its Subs.
	Hub *live.Hub
}
