#!/usr/bin/env bash
# Reproduces the third-party Playground assets committed under
# web/assets/playground/ from npm, at pinned versions and checksums.
#
# Usage: scripts/web-assets.sh   (from anywhere; needs npm and tar)
#
# Only the minified browser builds are kept. Their versions, licenses and the
# npm integrity of each package are written to VERSIONS, and the license texts
# to LICENSES. The project's own files in that folder (playground.js,
# playground.css) are left untouched.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/web/assets/playground"

# package@version  integrity (sha512 of the npm tarball, as the registry reports it)
packages=(
	"graphiql@3.9.0 sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA=="
	"react@18.3.1 sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
	"react-dom@18.3.1 sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
	"graphql-ws@6.4.2 sha512-wxhPhhOGJo8PbGDkBYVE76sZLDrS+GkyrR4bZECSLVbo0pZZNKs0HtBh2Ip/uaUuiVUxwO9ssI9R92buQfNSqQ=="
)

# package name -> files to copy, as "path-in-package:name-in-dest"
files_for() {
	case "$1" in
	graphiql) echo "graphiql.min.js:graphiql.min.js graphiql.min.css:graphiql.min.css" ;;
	react) echo "umd/react.production.min.js:react.production.min.js" ;;
	react-dom) echo "umd/react-dom.production.min.js:react-dom.production.min.js" ;;
	graphql-ws) echo "umd/graphql-ws.min.js:graphql-ws.min.js" ;;
	*) echo "web-assets: no file list for package $1" >&2; return 1 ;;
	esac
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$dest"
versions="$work/VERSIONS"
licenses="$work/LICENSES"
{
	echo "# Third-party browser builds served by the Playground, fetched from npm by"
	echo "# scripts/web-assets.sh. package@version, license, npm integrity, files."
} >"$versions"
: >"$licenses"

for entry in "${packages[@]}"; do
	spec="${entry%% *}"
	want="${entry#* }"
	name="${spec%@*}"

	(cd "$work" && npm pack --silent "$spec" >"$work/packed-name")
	tarball="$work/$(tail -n1 "$work/packed-name")"
	got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
	if [[ "$got" != "$want" ]]; then
		echo "web-assets: $spec integrity mismatch: want $want, got $got" >&2
		exit 1
	fi

	unpacked="$work/$name"
	mkdir -p "$unpacked"
	tar xzf "$tarball" -C "$unpacked"
	pkg="$unpacked/package"
	license="$(node -p "require('$pkg/package.json').license")"

	copied=()
	for pair in $(files_for "$name"); do
		src="${pair%%:*}"
		out="${pair#*:}"
		# The source maps are not shipped, so drop the comment that would make
		# browser devtools ask for them.
		sed '/^\/\/# sourceMappingURL=/d; /^\/\*# sourceMappingURL=.*\*\/$/d' "$pkg/$src" >"$dest/$out"
		copied+=("$out")
	done

	echo "$spec $license $want ${copied[*]}" >>"$versions"

	license_file="$(find "$pkg" -maxdepth 1 -iname 'LICENSE*' | head -n1)"
	if [[ -z "$license_file" ]]; then
		echo "web-assets: $spec ships no LICENSE file" >&2
		exit 1
	fi
	{
		echo "===== $spec ($license) ====="
		cat "$license_file"
		echo
	} >>"$licenses"
done

cp "$versions" "$dest/VERSIONS"
cp "$licenses" "$dest/LICENSES"
echo "web-assets: wrote $(ls "$dest" | wc -l) files to $dest"
