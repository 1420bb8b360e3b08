#!/bin/sh
# Vendors the web page's JavaScript libraries from their npm packages (no CDN, no build step):
# three.js's module build and the three example modules the viewer imports, unchanged, with
# the package's licence. Run from the repository root: sh service/gateway/web/vendor.sh
set -eu
THREE_VERSION=0.187.0
target=service/gateway/web/static/vendor/three
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "three@$THREE_VERSION" >/dev/null && tar xzf "three-$THREE_VERSION.tgz")
rm -rf "$target"
for file in LICENSE build/three.module.js build/three.core.js \
    examples/jsm/loaders/GLTFLoader.js examples/jsm/controls/OrbitControls.js \
    examples/jsm/utils/BufferGeometryUtils.js examples/jsm/utils/SkeletonUtils.js; do
  mkdir -p "$target/$(dirname "$file")"
  cp "$work/package/$file" "$target/$file"
done
echo "three $THREE_VERSION" > "$target/VERSION"
