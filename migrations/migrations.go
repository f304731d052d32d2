// Package migrations embeds the numbered SQL migrations applied at start and by
// the migrate subcommand.
package migrations

import "embed"

// FS holds every migration, named NNNN_title.up.sql / NNNN_title.down.sql.
//
//go:embed *.sql
var FS embed.FS
