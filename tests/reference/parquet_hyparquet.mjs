// Reference writer for tests/test_parquet.cpp: hyparquet-writer (npm), whose defaults differ
// from DuckDB's: every data page is a DATA_PAGE_V2, and a column can ask for
// DELTA_BYTE_ARRAY, DELTA_LENGTH_BYTE_ARRAY, DELTA_BINARY_PACKED or RLE (booleans).
//   node parquet_hyparquet.mjs DESCRIPTION.json
// DESCRIPTION: {"file": OUT.parquet, "schema": [SchemaElement...], "columns": [{"name",
// "data": [values, nested as the schema says], "encoding"?}], "rowGroupSize"?, "pageSize"?,
// "codec"? ("SNAPPY" by default, or "UNCOMPRESSED")}. Integers of INT64 columns are written
// as BigInt. The module folder is NPM_CACHE (default: <repo>/.cache/npm/node_modules).
import fs from 'fs'
import path from 'path'
import { fileURLToPath, pathToFileURL } from 'url'

const here = path.dirname(fileURLToPath(import.meta.url))
const cache = process.env.NPM_CACHE || path.join(here, '..', '..', '.cache', 'npm', 'node_modules')
const { parquetWriteFile } = await import(pathToFileURL(path.join(cache, 'hyparquet-writer', 'src', 'node.js')))

const description = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const int64 = new Set(description.schema.filter((e) => e.type === 'INT64').map((e) => e.name))
const columnData = description.columns.map((c) => ({
  name: c.name,
  data: int64.has(c.name) ? c.data.map((v) => (v === null ? null : BigInt(v))) : c.data,
  ...(c.encoding ? { encoding: c.encoding } : {}),
}))
parquetWriteFile({
  filename: description.file,
  columnData,
  schema: description.schema,
  ...(description.rowGroupSize ? { rowGroupSize: description.rowGroupSize } : {}),
  ...(description.pageSize ? { pageSize: description.pageSize } : {}),
  ...(description.codec ? { codec: description.codec } : {}),
})
