// Parquet: the footer and schema, then every row of every row group as JSON.
#include "fuzz/fuzz_support.h"
#include "io/jsonl.h"
#include "io/parquet.h"

namespace spinlm::fuzz {

void fuzz_parquet(const std::string& input) {
  ParquetReader reader(write_scratch("data.parquet", input));
  reader.schema_text();
  reader.created_by();
  reader.num_rows();
  for (nlohmann::json row; reader.next(row);) json_line(row);
}

}  // namespace spinlm::fuzz

SPINLM_FUZZ_TARGET(parquet)
