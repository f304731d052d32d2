package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// shape is one read the benchmark sends, the same request every time.
type shape struct {
	Name string
	// What says in a few words what it reads, for the report.
	What  string
	Query string
	Vars  func(p provisioned) map[string]any
	// Check says what is wrong with an answer's data, "" when it has the
	// shape the dataset gives.
	Check func(data []byte, d dataset, p provisioned) string
}

// shapes are the reads measured, in report order.
var shapes = []shape{
	{
		Name: "drop", What: "a drop page: drop, stock, product with media, creator",
		Query: `query DropPage($id: ID!) { drop(id: $id) { id title status startsAt endsAt
  stock { available reserved sold total }
  product { id title priceCents currency media { url } }
  creator { id handle displayName } } }`,
		Vars:  func(p provisioned) map[string]any { return map[string]any{"id": p.DropGID} },
		Check: checkDrop,
	},
	{
		Name: "creators", What: "20 creators with handle, displayName, followerCount",
		Query: `query Creators { creators(first: 20) { edges { node { id handle displayName followerCount } } } }`,
		Check: checkCreators,
	},
	{
		Name: "products", What: "20 creators, each with its first 5 products",
		Query: `query CreatorsProducts { creators(first: 20) { edges { node { id handle
  products(first: 5) { edges { node { id title priceCents } } } } } } }`,
		Check: checkCreatorsProducts,
	},
	{
		Name: "followers", What: "the first 50 followers of the creator with the most",
		Query: `query Followers($handle: String!) { creator(handle: $handle) { followers(first: 50) {
  edges { cursor node { id handle displayName } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`,
		Vars:  func(p provisioned) map[string]any { return map[string]any{"handle": p.BigHandle} },
		Check: checkFollowers,
	},
	{
		Name: "live", What: "liveDrops(first: 20) with product and creator",
		Query: `query LiveDrops { liveDrops(first: 20) { edges { cursor node { id title status endsAt
  stock { available total }
  product { id title priceCents currency }
  creator { id handle displayName } } } } }`,
		Check: checkLive,
	},
}

// pickShapes returns the shapes named in list (comma-separated; "" or "all":
// every one), in report order.
func pickShapes(list string) ([]shape, error) {
	if list == "" || list == "all" {
		return shapes, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []shape
	for _, s := range shapes {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		var names []string
		for _, s := range shapes {
			names = append(names, s.Name)
		}
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		return nil, fmt.Errorf("-shapes: unknown %s (shapes: %s)", strings.Join(unknown, ", "), strings.Join(names, ","))
	}
	return out, nil
}

// body is the shape's request, encoded once.
func (s shape) body(p provisioned) []byte {
	req := map[string]any{"query": s.Query}
	if s.Vars != nil {
		req["variables"] = s.Vars(p)
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(fmt.Sprintf("encode the %s request: %v", s.Name, err)) // maps of strings always encode
	}
	return b
}

// judgeFirst checks a shape's first answer in full: GraphQL with data and no
// errors, of the expected shape. Later answers are compared with it byte for byte.
func judgeFirst(s shape, status int, raw []byte, d dataset, p provisioned) string {
	if status != 200 {
		return fmt.Sprintf("HTTP %d: %.200s", status, raw)
	}
	var a struct {
		Data   json.RawMessage   `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Sprintf("not JSON: %.200s", raw)
	}
	if len(a.Errors) > 0 {
		return fmt.Sprintf("GraphQL errors: %.300s", raw)
	}
	if len(a.Data) == 0 || string(a.Data) == "null" {
		return "no data"
	}
	return s.Check(a.Data, d, p)
}

type edges[T any] struct {
	Edges []struct {
		Cursor string `json:"cursor"`
		Node   T      `json:"node"`
	} `json:"edges"`
}

type person struct {
	ID, Handle, DisplayName string
}

func decodeData[T any](data []byte) (T, string) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, "data does not decode: " + err.Error()
	}
	return v, ""
}

func checkDrop(data []byte, d dataset, p provisioned) string {
	v, bad := decodeData[struct {
		Drop *struct {
			ID, Status string
			Stock      struct{ Available, Total int }
			Product    struct {
				ID    string
				Media []struct{ URL string }
			}
			Creator person
		}
	}](data)
	switch {
	case bad != "":
		return bad
	case v.Drop == nil:
		return "drop is null"
	case v.Drop.ID != p.DropGID || v.Drop.Status != "LIVE":
		return fmt.Sprintf("drop %s %s, want %s LIVE", v.Drop.ID, v.Drop.Status, p.DropGID)
	case v.Drop.Stock.Total != d.Stock || v.Drop.Stock.Available != d.Stock:
		return fmt.Sprintf("stock %+v, want %d of %d available", v.Drop.Stock, d.Stock, d.Stock)
	case v.Drop.Product.ID == "" || len(v.Drop.Product.Media) != 1 || v.Drop.Product.Media[0].URL == "":
		return fmt.Sprintf("product %+v, want one image", v.Drop.Product)
	case v.Drop.Creator.Handle != p.BigHandle:
		return fmt.Sprintf("creator %q, want %q", v.Drop.Creator.Handle, p.BigHandle)
	}
	return ""
}

func checkCreators(data []byte, d dataset, p provisioned) string {
	v, bad := decodeData[struct {
		Creators edges[struct {
			person
			FollowerCount int
		}]
	}](data)
	if bad != "" {
		return bad
	}
	e := v.Creators.Edges
	if want := min(20, d.Creators); len(e) != want {
		return fmt.Sprintf("%d creators, want %d", len(e), want)
	}
	if e[0].Node.Handle != p.BigHandle || e[0].Node.FollowerCount != d.Followers {
		return fmt.Sprintf("first creator %s with %d followers, want %s with %d", e[0].Node.Handle, e[0].Node.FollowerCount, p.BigHandle, d.Followers)
	}
	return ""
}

func checkCreatorsProducts(data []byte, d dataset, _ provisioned) string {
	v, bad := decodeData[struct {
		Creators edges[struct {
			Handle   string
			Products edges[struct{ ID, Title string }]
		}]
	}](data)
	if bad != "" {
		return bad
	}
	e := v.Creators.Edges
	if want := min(20, d.Creators); len(e) != want {
		return fmt.Sprintf("%d creators, want %d", len(e), want)
	}
	for _, c := range e {
		if want := min(5, d.ProductsPerCreator); len(c.Node.Products.Edges) != want {
			return fmt.Sprintf("creator %s has %d products, want %d", c.Node.Handle, len(c.Node.Products.Edges), want)
		}
	}
	return ""
}

func checkFollowers(data []byte, d dataset, _ provisioned) string {
	v, bad := decodeData[struct {
		Creator *struct {
			Followers struct {
				edges[person]
				PageInfo struct{ HasNextPage bool }
			}
		}
	}](data)
	switch {
	case bad != "":
		return bad
	case v.Creator == nil:
		return "creator is null"
	}
	f := v.Creator.Followers
	if want := min(50, d.Followers); len(f.Edges) != want || f.PageInfo.HasNextPage != (d.Followers > 50) {
		return fmt.Sprintf("%d followers (hasNextPage %v), want %d of %d", len(f.Edges), f.PageInfo.HasNextPage, want, d.Followers)
	}
	for _, e := range f.Edges {
		if e.Cursor == "" || e.Node.Handle == "" {
			return "a follower without cursor or handle"
		}
	}
	return ""
}

func checkLive(data []byte, d dataset, _ provisioned) string {
	v, bad := decodeData[struct {
		LiveDrops edges[struct {
			Status  string
			Product struct{ ID string }
			Creator person
		}]
	}](data)
	if bad != "" {
		return bad
	}
	e := v.LiveDrops.Edges
	if want := min(20, d.LiveDrops); len(e) != want {
		return fmt.Sprintf("%d live drops, want %d", len(e), want)
	}
	for _, x := range e {
		if x.Node.Status != "LIVE" || x.Node.Product.ID == "" || x.Node.Creator.Handle == "" {
			return fmt.Sprintf("live drop %+v lacks its product or creator", x.Node)
		}
	}
	return ""
}
