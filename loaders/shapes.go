package loaders

import (
	"unsafe"

	"livedrops/cache"
	"livedrops/domain"
)

// The near cache's shapes of each cached kind: how a value is versioned by
// the events that change it, and the bytes its strings and slices hold.
var (
	userShape = cache.Shape[domain.User]{Kind: cache.KindUser, // users never change once made
		Size: func(u *domain.User) int { return len(u.Handle) + len(u.DisplayName) }}
	creatorShape = cache.Shape[domain.Creator]{Kind: cache.KindCreator,
		Version: func(c *domain.Creator) cache.Version { return cache.Version{Row: c.Version} },
		Size:    func(c *domain.Creator) int { return len(c.Handle) + len(c.DisplayName) + len(c.Bio) }}
	creatorOfUserShape = cache.Shape[int64]{Kind: cache.KindCreatorOfUser} // never changes once set
	productShape       = cache.Shape[domain.Product]{Kind: cache.KindProduct,
		Version: func(p *domain.Product) cache.Version { return cache.Version{Row: p.Version} },
		Size:    func(p *domain.Product) int { return len(p.Title) + len(p.Description) + len(p.Currency) }}
	mediaShape = cache.Shape[domain.Media]{Kind: cache.KindMedia, // immutable
		Size: mediaSize}
	mediaListShape = cache.Shape[[]domain.Media]{Kind: cache.KindProductMedia,
		Size: func(list *[]domain.Media) int {
			n := 0
			for i := range *list {
				n += int(unsafe.Sizeof((*list)[i])) + mediaSize(&(*list)[i])
			}
			return n
		}}
	dropShape = cache.Shape[domain.DropState]{Kind: cache.KindDrop,
		Version: func(s *domain.DropState) cache.Version {
			return cache.Version{Row: s.Drop.Version, Stock: s.Stock.Version}
		},
		Size: func(s *domain.DropState) int { return len(s.Drop.Title) + len(s.Drop.Status) }}
)

func mediaSize(m *domain.Media) int { return len(m.Key) + len(m.ContentType) + len(m.Checksum) }
