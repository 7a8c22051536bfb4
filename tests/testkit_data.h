// The arithmetic task's three splits as the run tests read them.
#pragma once
#include <string>

#include "data/arith_task.h"

namespace spinlm::testkit {

// make_arith_splits(seed, sizes) written to DIR/train.jsonl, DIR/heldout.jsonl, DIR/test.jsonl.
void write_arith_split_files(const std::string& dir, uint64_t seed, const ArithSplitSizes& sizes);

}  // namespace spinlm::testkit
