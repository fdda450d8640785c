#!/bin/sh
# Re-vendor the GraphiQL explorer from the npm registry: the UMD/production builds of graphiql,
# react and react-dom, gzipped as served (service/api/explorer.py), with their licences.
# Usage: service/api/graphiql/update.sh [graphiql-version] [react-version]
# React 19 ships no UMD builds and GraphiQL 4 none either: stay on 18 and 3 unless the page
# (index.html, explorer.js) is rewritten for ES modules.
set -eu
GRAPHIQL=${1:-3.9.0}
REACT=${2:-18.3.1}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
mkdir graphiql react react-dom
tar xzf "graphiql-$GRAPHIQL.tgz" -C graphiql
tar xzf "react-$REACT.tgz" -C react
tar xzf "react-dom-$REACT.tgz" -C react-dom
# gzip -n: no name or time in the header, so the same input gives the same bytes.
gzip -9n < graphiql/package/graphiql.min.js > "$here/graphiql.min.js.gz"
gzip -9n < graphiql/package/graphiql.min.css > "$here/graphiql.min.css.gz"
gzip -9n < react/package/umd/react.production.min.js > "$here/react.production.min.js.gz"
gzip -9n < react-dom/package/umd/react-dom.production.min.js > "$here/react-dom.production.min.js.gz"
cp graphiql/package/LICENSE "$here/LICENSE.graphiql"
cp react/package/LICENSE "$here/LICENSE.react"
cp react-dom/package/LICENSE "$here/LICENSE.react-dom"
{
  echo "graphiql $GRAPHIQL $(npm view "graphiql@$GRAPHIQL" dist.integrity)"
  echo "react $REACT $(npm view "react@$REACT" dist.integrity)"
  echo "react-dom $REACT $(npm view "react-dom@$REACT" dist.integrity)"
} > "$here/VERSIONS"
cd "$here" && sha256sum ./*.gz > SHA256SUMS
echo "vendored graphiql $GRAPHIQL, react and react-dom $REACT into $here"
