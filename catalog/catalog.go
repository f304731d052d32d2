// Package catalog holds the rules of creators' products and their media:
// who may create and change them, what a valid product is, and which files
// may be uploaded for it.
package catalog

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"livedrops/cache"
	"livedrops/domain"
	"livedrops/media"
	"livedrops/store"
)

// Limits of a product and of an upload.
const (
	MaxTitleLen       = 120
	MaxDescriptionLen = 5000
	MaxPriceCents     = 100_000_000
	MaxMediaBytes     = 20 << 20
	// UploadTTL is how long a presigned upload URL works.
	UploadTTL = 15 * time.Minute
)

// Currencies a product may be priced in (ISO 4217).
var currencies = map[string]bool{
	"USD": true, "EUR": true, "GBP": true, "JPY": true, "CAD": true, "AUD": true,
	"CHF": true, "SEK": true, "NOK": true, "DKK": true, "PLN": true,
}

// Media types that may be uploaded, with the file extension of their keys.
var mediaTypes = map[string]string{
	"image/jpeg": "jpg",
	"image/png":  "png",
	"image/webp": "webp",
	"image/gif":  "gif",
	"video/mp4":  "mp4",
}

// Service applies the catalog's rules.
type Service struct {
	db    *store.DB
	media *media.Store
	cache *cache.Cache
}

// New returns the catalog service.
func New(db *store.DB, media *media.Store, cache *cache.Cache) *Service {
	return &Service{db: db, media: media, cache: cache}
}

// ProductInput is a new product as a client gave it.
type ProductInput struct {
	Title       string
	Description string
	PriceCents  int64
	Currency    string
}

// ProductPatch changes the fields that are set and leaves the others.
type ProductPatch struct {
	Title       *string
	Description *string
	PriceCents  *int64
	Currency    *string
}

// MediaUpload is a reserved media slot and how to fill it: PUT the file to
// UploadURL with exactly Headers before ExpiresAt.
type MediaUpload struct {
	UploadURL string
	Method    string
	Headers   map[string]string
	ExpiresAt time.Time
	Media     *domain.Media
}

// CreateProduct creates a product of the user's creator profile.
func (s *Service) CreateProduct(ctx context.Context, userID int64, in ProductInput) (*domain.Product, error) {
	creators, err := s.db.CreatorByUserID(ctx, []int64{userID})
	if err != nil {
		return nil, err
	}
	if len(creators) == 0 {
		return nil, domain.Errorf(domain.Forbidden, "become a creator first")
	}
	p := &domain.Product{
		CreatorID:   creators[0].ID,
		Title:       in.Title,
		Description: in.Description,
		PriceCents:  in.PriceCents,
		Currency:    in.Currency,
	}
	if err := normalize(p); err != nil {
		return nil, err
	}
	if err := s.db.CreateProduct(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// UpdateProduct changes one of the user's products.
func (s *Service) UpdateProduct(ctx context.Context, userID, productID int64, patch ProductPatch) (*domain.Product, error) {
	if err := s.requireOwner(ctx, userID, productID); err != nil {
		return nil, err
	}
	found, err := s.db.ProductsByIDs(ctx, []int64{productID})
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, domain.Errorf(domain.NotFound, "product not found")
	}
	p := &found[0]
	if patch == (ProductPatch{}) {
		return p, nil
	}
	if patch.Title != nil {
		p.Title = *patch.Title
	}
	if patch.Description != nil {
		p.Description = *patch.Description
	}
	if patch.PriceCents != nil {
		p.PriceCents = *patch.PriceCents
	}
	if patch.Currency != nil {
		p.Currency = *patch.Currency
	}
	if err := normalize(p); err != nil {
		return nil, err
	}
	if err := s.db.UpdateProduct(ctx, p); err != nil {
		return nil, err
	}
	s.evict(ctx, cache.KindProduct, productID)
	return p, nil
}

// CreateMediaUpload reserves a media slot on one of the user's products and
// presigns the upload of a file of exactly that type and size.
func (s *Service) CreateMediaUpload(ctx context.Context, userID, productID int64, contentType string, byteSize int64) (*MediaUpload, error) {
	contentType = strings.ToLower(strings.TrimSpace(contentType))
	ext, ok := mediaTypes[contentType]
	if !ok {
		return nil, domain.InvalidInput("contentType", "contentType must be one of image/jpeg, image/png, image/webp, image/gif or video/mp4")
	}
	if byteSize < 1 || byteSize > MaxMediaBytes {
		return nil, domain.InvalidInput("byteSize", "byteSize must be between 1 and %d bytes (20 MiB)", MaxMediaBytes)
	}
	if err := s.requireOwner(ctx, userID, productID); err != nil {
		return nil, err
	}
	m := &domain.Media{
		ProductID:   productID,
		Key:         "products/" + strconv.FormatInt(productID, 10) + "/" + uuid.NewString() + "." + ext,
		ContentType: contentType,
		ByteSize:    byteSize,
	}
	// Presign first: a failure here leaves no media row pointing at nothing.
	uploadURL, headers, expiresAt, err := s.media.PresignPut(ctx, m.Key, contentType, byteSize, UploadTTL)
	if err != nil {
		return nil, err
	}
	if err := s.db.CreateMedia(ctx, m); err != nil {
		return nil, err
	}
	s.evict(ctx, cache.KindProductMedia, productID)
	return &MediaUpload{UploadURL: uploadURL, Method: "PUT", Headers: headers, ExpiresAt: expiresAt, Media: m}, nil
}

// MediaURL is where m is served from.
func (s *Service) MediaURL(m *domain.Media) string { return s.media.URL(m.Key) }

// requireOwner answers NOT_FOUND when there is no such product and
// FORBIDDEN when it is not the user's.
func (s *Service) requireOwner(ctx context.Context, userID, productID int64) error {
	sale, err := s.db.ProductSale(ctx, productID)
	if err != nil {
		return err
	}
	if sale.OwnerUserID != userID {
		return domain.Errorf(domain.Forbidden, "this product is not yours")
	}
	return nil
}

// evict drops a changed value from Redis. A failure is logged, not returned:
// the write is committed, and its outbox event evicts again everywhere.
func (s *Service) evict(ctx context.Context, kind string, id int64) {
	if err := s.cache.Evict(ctx, kind, id); err != nil {
		slog.WarnContext(ctx, "cache eviction failed", "component", "catalog", "kind", kind, "id", id, "err", err)
	}
}

// normalize trims p's text fields, upper-cases its currency, and checks
// every field against the catalog's limits.
func normalize(p *domain.Product) error {
	p.Title = strings.TrimSpace(p.Title)
	p.Description = strings.TrimSpace(p.Description)
	p.Currency = strings.ToUpper(strings.TrimSpace(p.Currency))
	switch n := utf8.RuneCountInString(p.Title); {
	case n == 0:
		return domain.InvalidInput("title", "title must not be empty")
	case n > MaxTitleLen:
		return domain.InvalidInput("title", "title must be at most %d characters", MaxTitleLen)
	case !utf8.ValidString(p.Title) || strings.IndexFunc(p.Title, unicode.IsControl) >= 0:
		return domain.InvalidInput("title", "title must be one line of text")
	}
	if !utf8.ValidString(p.Description) {
		return domain.InvalidInput("description", "description must be text")
	}
	if utf8.RuneCountInString(p.Description) > MaxDescriptionLen {
		return domain.InvalidInput("description", "description must be at most %d characters", MaxDescriptionLen)
	}
	if p.PriceCents < 0 || p.PriceCents > MaxPriceCents {
		return domain.InvalidInput("priceCents", "priceCents must be between 0 and %d", MaxPriceCents)
	}
	if !currencies[p.Currency] {
		return domain.InvalidInput("currency", "currency must be one of USD, EUR, GBP, JPY, CAD, AUD, CHF, SEK, NOK, DKK or PLN")
	}
	return nil
}
