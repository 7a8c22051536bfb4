// safetensors: the header's validation (sizes, dtypes, shapes, offsets tiling the data
// section), then every tensor copied out and converted to float.
#include "core/error.h"
#include "fuzz/fuzz_support.h"
#include "io/safetensors.h"

namespace spinlm::fuzz {

void fuzz_safetensors(const std::string& input) {
  SafetensorsFile file(write_scratch("model.safetensors", input));
  for (const auto& [name, entry] : file.entries()) {
    try {
      safetensors_scalar_type(entry.dtype);
    } catch (const Error&) {
      continue;  // a dtype the format has and libtorch 1.13 lacks (U16, F8_E4M3, ...)
    }
    file.tensor(name);
  }
}

}  // namespace spinlm::fuzz

SPINLM_FUZZ_TARGET(safetensors)
