// Recipe YAML: parsing and validation (every key, value and cross-check of
// src/pipeline/recipe.cpp), then the recipe as the JSON a run records.
#include "fuzz/fuzz_support.h"
#include "pipeline/recipe.h"

namespace spinlm::fuzz {

void fuzz_recipe(const std::string& input) {
  Recipe recipe = parse_recipe(input, scratch_dir() + "/recipe.yaml", scratch_dir());
  recipe_to_json(recipe);
}

}  // namespace spinlm::fuzz

SPINLM_FUZZ_TARGET(recipe)
