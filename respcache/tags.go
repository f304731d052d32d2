package respcache

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/99designs/gqlgen/graphql"

	"livedrops/domain"
)

// Tags collects the tags of one execution: the entities its fields returned
// and the lists it read. Resolvers run concurrently, hence the lock.
type Tags struct {
	mu sync.Mutex
	// related also adds each entity's lists: a mutation's result names what
	// it changed, and the lists holding it changed too.
	related bool
	set     map[string]struct{}
	// untagged is set when a list's owner could not be told: the response
	// must not be stored, no eviction could reach it.
	untagged bool
}

type tagsKey struct{}

// WithTags returns ctx collecting tags into the returned Tags (see Collect).
// related is for mutations: each entity brings its lists along.
func WithTags(ctx context.Context, related bool) (context.Context, *Tags) {
	t := &Tags{related: related, set: map[string]struct{}{}}
	return context.WithValue(ctx, tagsKey{}, t), t
}

// List returns the tags collected, sorted; ok is false when one could not be
// told and the response must not be cached.
func (t *Tags) List() (tags []string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tags = make([]string, 0, len(t.set))
	for tag := range t.set {
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	return tags, !t.untagged
}

func (t *Tags) add(tags ...string) {
	t.mu.Lock()
	for _, tag := range tags {
		t.set[tag] = struct{}{}
	}
	t.mu.Unlock()
}

func (t *Tags) lost() {
	t.mu.Lock()
	t.untagged = true
	t.mu.Unlock()
}

// Collect is a field middleware (handler.AroundFields): in an execution
// started with WithTags it records the entity each field returns and the
// list each list field reads; elsewhere it costs one context lookup.
func Collect(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	t, ok := ctx.Value(tagsKey{}).(*Tags)
	if !ok || err != nil {
		return res, err
	}
	fc := graphql.GetFieldContext(ctx)
	if fc != nil {
		if list, owned := listOf(fc.Object, fc.Field.Name); list != "" {
			if !owned {
				t.add(list)
			} else if owner := ownerID(fc); owner != "" {
				t.add(owner + ":" + list)
			} else {
				t.lost()
			}
		}
	}
	if tags := entityTags(res, t.related); len(tags) > 0 {
		t.add(tags...)
	} else if fc != nil && fc.Object == "Query" && fc.Field.Name == "creator" {
		// No such creator yet: becoming one evicts the creators list.
		t.add(ListCreators)
	}
	return res, err
}

// listOf names the list a field reads: a global one, or one owned by the
// field's object (prefixed with the owner's tag).
func listOf(object, field string) (list string, owned bool) {
	switch object + "." + field {
	case "Query.creators":
		return ListCreators, false
	case "Query.drops":
		return ListDrops, false
	case "Query.liveDrops":
		return ListLiveDrops, false
	case "Creator.products":
		return "products", true
	case "Creator.followers":
		return "followers", true
	case "Creator.drops", "Product.drops":
		return "drops", true
	case "User.following":
		return "following", true
	}
	return "", false
}

// ownerID is the tag of the object whose field fc is: the nearest result up
// the path that is an entity.
func ownerID(fc *graphql.FieldContext) string {
	for p := fc.Parent; p != nil; p = p.Parent {
		if tags := entityTags(p.Result, false); len(tags) > 0 {
			return tags[0]
		}
	}
	return ""
}

// Global lists, by tag.
const (
	ListCreators  = "creators"
	ListDrops     = "drops"
	ListLiveDrops = "liveDrops"
)

// Entity tags: "drop:12". Owned lists add ":products", ":drops",
// ":followers" or ":following".
func DropTag(id int64) string    { return "drop:" + strconv.FormatInt(id, 10) }
func ProductTag(id int64) string { return "product:" + strconv.FormatInt(id, 10) }
func CreatorTag(id int64) string { return "creator:" + strconv.FormatInt(id, 10) }
func UserTag(id int64) string    { return "user:" + strconv.FormatInt(id, 10) }

// entityTags is the tag of v when it is an entity, and with related the
// tags of the lists holding it.
func entityTags(v any, related bool) []string {
	switch e := v.(type) {
	case *domain.Drop:
		if e == nil {
			return nil
		}
		if related {
			return DropTags(e.ID, e.CreatorID, e.ProductID)
		}
		return []string{DropTag(e.ID)}
	case *domain.Product:
		if e == nil {
			return nil
		}
		if related {
			return ProductTags(e.ID, e.CreatorID)
		}
		return []string{ProductTag(e.ID)}
	case *domain.Creator:
		if e == nil {
			return nil
		}
		if related {
			return []string{CreatorTag(e.ID), CreatorTag(e.ID) + ":followers", ListCreators, UserTag(e.UserID)}
		}
		return []string{CreatorTag(e.ID)}
	case *domain.Order:
		// Orders are never cached; an order written moved its drop's stock.
		if e == nil || !related {
			return nil
		}
		return []string{DropTag(e.DropID), ListDrops, ListLiveDrops}
	case *domain.User:
		if e == nil {
			return nil
		}
		if related {
			return []string{UserTag(e.ID), UserTag(e.ID) + ":following"}
		}
		return []string{UserTag(e.ID)}
	}
	return nil
}

// DropTags are the tags a change of a drop's state evicts: the drop and
// every list it may be in. productID 0 leaves the product's list out.
func DropTags(dropID, creatorID, productID int64) []string {
	tags := []string{DropTag(dropID), ListDrops, ListLiveDrops, CreatorTag(creatorID) + ":drops"}
	if productID != 0 {
		tags = append(tags, ProductTag(productID)+":drops")
	}
	return tags
}

// ProductTags are the tags a change of a product evicts.
func ProductTags(productID, creatorID int64) []string {
	return []string{ProductTag(productID), CreatorTag(creatorID) + ":products"}
}
