// Package seed loads demo data: two creators with products, a live drop and a
// scheduled one, and a buyer, so a fresh `make run` has something to explore.
package seed

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"livedrops/auth"
	"livedrops/domain"
	"livedrops/drops"
	"livedrops/store"
)

// DemoPassword is the password of every demo account.
const DemoPassword = "livedrops-demo"

// Drops is what seeding needs of the drops service.
type Drops interface {
	Schedule(ctx context.Context, userID int64, in drops.ScheduleInput) (*domain.Drop, error)
	Start(ctx context.Context, userID, dropID int64) (*domain.Drop, error)
}

type demoCreator struct {
	handle, name, bio string
	products          []domain.Product
}

var demo = []demoCreator{
	{"aurora", "Aurora Vinyl", "Limited pressings, signed sleeves.", []domain.Product{
		{Title: "Midnight Tapes — signed LP", Description: "180 g vinyl, numbered and signed.", PriceCents: 3900, Currency: "USD"},
		{Title: "Tour poster 2026", Description: "Screen-printed, 50 × 70 cm.", PriceCents: 2500, Currency: "USD"},
	}},
	{"kilnworks", "Kiln Works", "Small-batch stoneware from a two-person studio.", []domain.Product{
		{Title: "Ash-glaze mug", Description: "Wood-fired, 350 ml.", PriceCents: 4200, Currency: "EUR"},
	}},
}

// Load inserts the demo data unless it is already there.
func Load(ctx context.Context, db *store.DB, ds Drops, log *slog.Logger) error {
	if _, err := db.UserByHandle(ctx, demo[0].handle); err == nil {
		log.Info("demo data already present")
		return nil
	} else if domain.ErrorCode(err) != domain.NotFound {
		return fmt.Errorf("seed: %w", err)
	}
	hash, err := auth.HashPassword(ctx, DemoPassword)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	buyer, err := db.CreateUser(ctx, "ben", "Ben Buyer", hash)
	if err != nil {
		return fmt.Errorf("seed: buyer: %w", err)
	}
	now := db.Now()
	for i, dc := range demo {
		u, err := db.CreateUser(ctx, dc.handle, dc.name, hash)
		if err != nil {
			return fmt.Errorf("seed: user %s: %w", dc.handle, err)
		}
		c, err := db.CreateCreator(ctx, u.ID, dc.name, dc.bio)
		if err != nil {
			return fmt.Errorf("seed: creator %s: %w", dc.handle, err)
		}
		if _, err := db.Follow(ctx, c.ID, buyer.ID); err != nil {
			return fmt.Errorf("seed: follow %s: %w", dc.handle, err)
		}
		for j := range dc.products {
			p := dc.products[j]
			p.CreatorID = c.ID
			if err := db.CreateProduct(ctx, &p); err != nil {
				return fmt.Errorf("seed: product %q: %w", p.Title, err)
			}
			// The first product of the first creator is live now; the others start later.
			starts := now.Add(time.Duration(i+j+1) * time.Hour)
			d, err := ds.Schedule(ctx, u.ID, drops.ScheduleInput{
				ProductID: p.ID, Title: p.Title + " drop", StartsAt: starts, EndsAt: starts.Add(48 * time.Hour),
				Stock: 100, PerUserLimit: 2,
			})
			if err != nil {
				return fmt.Errorf("seed: drop of %q: %w", p.Title, err)
			}
			if i == 0 && j == 0 {
				if _, err := ds.Start(ctx, u.ID, d.ID); err != nil {
					return fmt.Errorf("seed: start drop: %w", err)
				}
			}
		}
	}
	log.Info("demo data loaded", "accounts", "ben, aurora, kilnworks", "password", DemoPassword)
	return nil
}
