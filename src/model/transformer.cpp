// The Llama-family decoder, top to bottom, one op a line. Every formula follows
// transformers' modeling_llama / modeling_qwen2 / modeling_qwen3 / modeling_mistral:
// RMSNorm in fp32 then cast back, rotate_half RoPE with inv_freq computed in fp32,
// eager attention with an additive mask of the dtype's lowest value, softmax in fp32.
#include "model/transformer.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/huge_pages.h"
#include "model/gemv.h"
#include "model/decode_attention.h"
#include "model/fused_attention.h"
#include "model/recompute.h"
#include "model/target_logprobs.h"

namespace spinlm {

// q/k/v and gate/up are views into one buffer each, so that a forward without autograd
// (generation, scoring) does one matrix product where the separate weights need three or
// two: half the calls, and the products of one-sequence decoding read one long stream.
// While the weights are trained the separate views are used, so each gets its own gradient.
struct Transformer::Layer {
  int64_t index = 0;                  // position in the stack (LoRA adapters are found by it)
  at::Tensor input_norm;              // [C]
  at::Tensor qkv_weight, qkv_bias;    // [(H+2Hkv)*D, C], [(H+2Hkv)*D]: q, k, v rows stacked
  at::Tensor q_weight, q_bias;        // [H*D, C], [H*D] (bias optional)
  at::Tensor k_weight, k_bias;        // [Hkv*D, C], [Hkv*D]
  at::Tensor v_weight, v_bias;        // [Hkv*D, C], [Hkv*D]
  at::Tensor o_weight, o_bias;        // [C, H*D], [C]
  at::Tensor q_norm, k_norm;          // [D] (qwen3 only)
  at::Tensor post_norm;               // [C]
  at::Tensor gate_up_weight;          // [2F, C]: gate rows, then up rows
  at::Tensor gate_weight, up_weight;  // [F, C]
  at::Tensor down_weight;             // [C, F]
};

// Where forward_cached puts this step's keys/values, and which cached keys it reads.
struct Transformer::CacheWrite {
  KVCache* cache = nullptr;
  int64_t layer = 0;
  at::Tensor token_rows;  // [N] rows of the flattened [B*T] batch that are real tokens
  at::Tensor slot_of;     // [N] their cache slots
  at::Tensor position_of; // [N] their positions in the slot
  at::Tensor slots;       // [B] slot of each row
  int64_t first_slot = -1;  // >= 0 when slots are first_slot, first_slot+1, ... (no gather)
  int64_t key_length = 0;   // S: keys read per row (max over rows of the length after writing)
  // forward_decode_slots: row s writes its one token at (slot s, write_positions[s]) and
  // reads the cache's first key_length positions; the other fields above are unused then.
  at::Tensor write_positions;  // [S] int64 on the device
};

namespace {
// A causal view (packed_tokens.h) on the device.
struct DeviceView {
  int64_t start = 0, length = 0;  // contiguous rows, when rows is undefined
  at::Tensor rows;                // [n] int64 gathered stream rows
  int64_t keep = 0;
  at::Tensor mask;  // [1, 1, n, n] causal, additive; undefined for fused attention's is_causal
};
}  // namespace

// forward_packed's attention over a stream. Masks: block b is stream rows starts[b] ..
// starts[b + 1] - 1 with the additive mask masks[b] [1, 1, L, L]. Views (when views is not
// empty): each view is rows of the stream, contiguous (start, length) or gathered (rows),
// that attend causally among themselves; its last `keep` rows' outputs are used, and the
// views' kept rows, in order, are the stream's rows in order.
struct Transformer::PackedAttention {
  std::vector<int64_t> starts;
  std::vector<at::Tensor> masks;
  std::vector<DeviceView> views;
};

namespace {

// x [N, in] -> [N, out] with weight [out, in] and optional bias [out].
at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = at::Tensor()) {
  const bool needs_grad = at::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad() ||
                                                         (bias.defined() && bias.requires_grad()));
  if (x.size(0) == 1 && !needs_grad) {
    // One row (single-sequence decoding) is bound by reading the weights once per token:
    // a streaming gemv beats a one-row gemm (OpenBLAS's gemv by ~2x, ours by ~30% more).
    at::Tensor row = x[0];  // [in]
    at::Tensor y = fast_gemv_applies(weight, row) ? fast_gemv(weight, row) : at::mv(weight, row);  // [out]
    if (bias.defined()) y.add_(bias);
    return y.unsqueeze(0);
  }
  if (bias.defined()) return at::addmm(bias, x, weight.t());
  return at::mm(x, weight.t());
}

// LlamaRMSNorm: normalise in fp32, cast back to the input dtype, then scale.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) {
    at::Tensor variance = x.pow(2).mean(-1, /*keepdim=*/true);
    return weight * (x * at::rsqrt(variance + eps));
  }
  at::Tensor x32 = x.to(at::kFloat);
  at::Tensor variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (x32 * at::rsqrt(variance + eps)).to(x.scalar_type());
}

// rotate_half: [x1, x2] -> [-x2, x1] over the last dimension.
at::Tensor rotate_half(const at::Tensor& x) {
  int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x [B, T, h, D], cos/sin [B, T, 1, D].
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return x * cos + rotate_half(x) * sin;
}

// Grouped-query attention. q [B, H, T, D], k/v [B, Hkv, S, D], mask [B, 1, T, S] additive.
// Head h uses key/value head h / G (transformers' repeat_kv); instead of copying k and v
// G times, the G query heads of a group are stacked along time: [B, Hkv, G*T, D].
// Returns [B*T, H*D].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& mask) {
  // CUDA tensors on libtorch 2.x: SDPA's fused kernels (model/fused_attention.h).
  if (fused_attention_applies(q.device())) return fused_attention(q, k, v, mask);
  // One query position on the CPU (decoding): model/decode_attention.h.
  if (decode_attention_applies(q, k, v, mask)) return decode_attention(q, k, v, mask);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2), G = H / Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor grouped = q.reshape({B, Hkv, G * T, D});
  at::Tensor scores = at::matmul(grouped, k.transpose(-1, -2));  // [B, Hkv, G*T, S]
  // In place: matmul's backward needs its inputs, not its output.
  scores = scores.view({B, Hkv, G, T, S}).mul_(scale).add_(mask.unsqueeze(2));
  at::Tensor probs = q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble
                         ? at::softmax(scores, -1)
                         : at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  at::Tensor out = at::matmul(probs.view({B, Hkv, G * T, S}), v);  // [B, Hkv, G*T, D]
  return out.view({B, H, T, D}).transpose(1, 2).reshape({B * T, H * D});
}

// Additive mask [B, 1, T, S] from a boolean allowed [B, T, S]: 0 where allowed, the
// dtype's lowest finite value elsewhere (as transformers does; never -inf, so a fully
// masked padding row stays finite).
at::Tensor additive_mask(const at::Tensor& allowed, at::ScalarType dtype) {
  at::Tensor mask = at::zeros(allowed.sizes(), allowed.options().dtype(dtype));
  double lowest = dtype == at::kDouble ? std::numeric_limits<double>::lowest()
                  : dtype == at::kHalf ? -65504.0
                  : dtype == at::kBFloat16 ? -3.3895313892515355e38
                                           : double(std::numeric_limits<float>::lowest());
  mask.masked_fill_(allowed.logical_not(), lowest);
  return mask.unsqueeze(1);
}

// A packed stream's causal views (packed_tokens.h) on the device, each with its causal mask
// unless fused attention's is_causal serves; empty when some block needs its [L, L] mask.
std::vector<DeviceView> device_views(const PackedTokens& packed, int64_t sliding_window, at::Device device,
                                     at::ScalarType dtype, bool fused) {
  std::vector<DeviceView> views;
  for (const CausalView& view : packed_causal_views(packed, sliding_window)) {
    DeviceView v;
    const int64_t n = int64_t(view.rows.size());
    if (view.contiguous()) {
      v.start = view.rows.front();
      v.length = n;
    } else {
      v.rows = at::tensor(view.rows, at::kLong).to(device);
    }
    v.keep = view.keep;
    if (!fused) {
      const at::Tensor causal = at::ones({1, n, n}, at::TensorOptions().device(device).dtype(at::kBool)).tril();
      v.mask = additive_mask(causal, dtype);  // [1, 1, n, n]
    }
    views.push_back(std::move(v));
  }
  return views;
}

// transformers' _compute_default_rope_parameters and _compute_llama3_parameters, in fp32.
at::Tensor compute_inv_freq(const ModelConfig& config, at::Device device) {
  const int64_t D = config.head_dim;
  auto options = at::TensorOptions().device(device);
  at::Tensor exponents = at::arange(0, D, 2, options.dtype(at::kLong)).to(at::kFloat) / double(D);
  at::Tensor inv_freq = 1.0 / at::pow(config.rope_theta, exponents);
  const RopeScaling& s = config.rope_scaling;
  if (s.kind != "llama3") return inv_freq;
  const double old_context = double(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_context / s.low_freq_factor;
  const double high_freq_wavelen = old_context / s.high_freq_factor;
  at::Tensor wavelen = 2 * M_PI / inv_freq;
  at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
  at::Tensor smooth = (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  at::Tensor medium = (wavelen < high_freq_wavelen).logical_not() & (wavelen > low_freq_wavelen).logical_not();
  return at::where(medium, smoothed, scaled);
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Transformer::Transformer(ModelConfig config, at::Device device, at::ScalarType dtype)
    : config_(std::move(config)), device_(device), dtype_(dtype) {
  const ModelConfig& c = config_;
  check(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0 &&
            c.num_attention_heads > 0 && c.num_key_value_heads > 0 && c.head_dim > 0,
        "model config: sizes must be positive (was the config parsed with ModelConfig::from_json?)");
  check(c.num_attention_heads % c.num_key_value_heads == 0,
        "model config: num_key_value_heads must divide num_attention_heads");
  auto options = at::TensorOptions().device(device).dtype(dtype);
  // Weights are streamed once per decoded token: large ones go on huge pages (core/huge_pages.h).
  auto allocate = [&](at::IntArrayRef shape) {
    at::Tensor tensor = at::empty(shape, options);
    advise_huge_pages(tensor);
    return tensor;
  };
  auto add = [&](const std::string& name, at::IntArrayRef shape) {
    at::Tensor tensor = allocate(shape);
    parameters_.emplace_back(name, tensor);
    return tensor;
  };
  // A parameter that is rows [offset, offset + rows) of a shared buffer.
  auto add_view = [&](const std::string& name, const at::Tensor& buffer, int64_t offset, int64_t rows) {
    at::Tensor view = buffer.narrow(0, offset, rows);
    parameters_.emplace_back(name, view);
    return view;
  };
  const int64_t C = c.hidden_size, F = c.intermediate_size, D = c.head_dim;
  const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads;
  // The order of transformers' state_dict.
  embed_tokens_ = add("model.embed_tokens.weight", {c.vocab_size, C});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    auto layer = std::make_shared<Layer>();
    layer->index = i;
    std::string prefix = "model.layers." + std::to_string(i) + ".";
    layer->qkv_weight = allocate({(H + 2 * Hkv) * D, C});
    layer->q_weight = add_view(prefix + "self_attn.q_proj.weight", layer->qkv_weight, 0, H * D);
    if (c.attention_bias) {
      layer->qkv_bias = at::empty({(H + 2 * Hkv) * D}, options);
      layer->q_bias = add_view(prefix + "self_attn.q_proj.bias", layer->qkv_bias, 0, H * D);
    }
    layer->k_weight = add_view(prefix + "self_attn.k_proj.weight", layer->qkv_weight, H * D, Hkv * D);
    if (c.attention_bias) layer->k_bias = add_view(prefix + "self_attn.k_proj.bias", layer->qkv_bias, H * D, Hkv * D);
    layer->v_weight = add_view(prefix + "self_attn.v_proj.weight", layer->qkv_weight, (H + Hkv) * D, Hkv * D);
    if (c.attention_bias) {
      layer->v_bias = add_view(prefix + "self_attn.v_proj.bias", layer->qkv_bias, (H + Hkv) * D, Hkv * D);
    }
    layer->o_weight = add(prefix + "self_attn.o_proj.weight", {C, H * D});
    if (c.o_proj_bias) layer->o_bias = add(prefix + "self_attn.o_proj.bias", {C});
    if (c.qk_norm) {
      layer->q_norm = add(prefix + "self_attn.q_norm.weight", {D});
      layer->k_norm = add(prefix + "self_attn.k_norm.weight", {D});
    }
    layer->gate_up_weight = allocate({2 * F, C});
    layer->gate_weight = add_view(prefix + "mlp.gate_proj.weight", layer->gate_up_weight, 0, F);
    layer->up_weight = add_view(prefix + "mlp.up_proj.weight", layer->gate_up_weight, F, F);
    layer->down_weight = add(prefix + "mlp.down_proj.weight", {C, F});
    layer->input_norm = add(prefix + "input_layernorm.weight", {C});
    layer->post_norm = add(prefix + "post_attention_layernorm.weight", {C});
    layers_.push_back(layer);
  }
  final_norm_ = add("model.norm.weight", {C});
  lm_head_ = c.tie_word_embeddings ? embed_tokens_ : add("lm_head.weight", {c.vocab_size, C});
  inv_freq_ = compute_inv_freq(c, device);
}

std::vector<at::Tensor> Transformer::parameters() const {
  std::vector<at::Tensor> result;
  for (const auto& named : parameters_) result.push_back(named.second);
  return result;
}

at::Tensor Transformer::parameter(const std::string& name) const {
  for (const auto& named : parameters_) {
    if (named.first == name) return named.second;
  }
  fail("model has no parameter \"", name, "\"");
}

void Transformer::set_requires_grad(bool requires_grad) {
  for (auto& named : parameters_) named.second.set_requires_grad(requires_grad);
}

void Transformer::set_lora(std::shared_ptr<LoraAdapters> adapters) {
  if (adapters) {
    for (const LoraModule& m : adapters->modules()) {
      const at::Tensor weight = parameter(m.name + ".weight");
      check(m.A.size(1) == weight.size(1) && m.B.size(0) == weight.size(0), "LoRA adapter of ", m.name,
            " is [", m.B.size(0), ", r] x [r, ", m.A.size(1), "], the model's weight is ", weight.sizes());
      check(m.A.device() == device_, "LoRA adapter of ", m.name, " is on ", m.A.device(), ", the model on ", device_);
    }
  }
  lora_ = std::move(adapters);
}

std::vector<at::Tensor> Transformer::trainable_parameters() {
  if (!lora_) {
    set_requires_grad(true);
    return parameters();
  }
  set_requires_grad(false);
  lora_->set_requires_grad(true);
  return lora_->parameters();
}

void Transformer::init_random(uint64_t seed, double std) {
  at::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  for (auto& [name, tensor] : parameters_) {
    if (ends_with(name, "norm.weight")) {
      tensor.fill_(1.0);
    } else if (ends_with(name, ".bias")) {
      tensor.zero_();
    } else {
      // Drawn on the CPU in fp32, so a seed gives the same weights on every device.
      at::Tensor values = at::empty(tensor.sizes(), at::kFloat).normal_(0.0, std, generator);
      tensor.copy_(values);
    }
  }
  // nn.Embedding(padding_idx=pad_token_id) zeroes the padding row at initialisation.
  const auto& pad = config_.raw.is_object() ? config_.raw.value("pad_token_id", nlohmann::json()) : nlohmann::json();
  if (pad.is_number_integer() && pad.get<int64_t>() >= 0 && pad.get<int64_t>() < config_.vocab_size) {
    embed_tokens_[pad.get<int64_t>()].zero_();
  }
}

std::pair<at::Tensor, at::Tensor> Transformer::rope_cos_sin(const at::Tensor& positions) const {
  // [B, T, 1] * [D/2] -> [B, T, D/2], in fp32 like transformers' LlamaRotaryEmbedding.
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(2);  // [B, T, 1, D]
  return {emb.cos().to(dtype_), emb.sin().to(dtype_)};
}

at::Tensor Transformer::cached_keys_mask(const at::Tensor& positions, int64_t key_length) const {
  at::Tensor key_positions = at::arange(key_length, positions.options());                // [S]
  at::Tensor allowed = key_positions.view({1, 1, -1}) <= positions.unsqueeze(-1);        // [B, T, S]
  if (config_.sliding_window > 0) {
    allowed = allowed & (positions.unsqueeze(-1) - key_positions.view({1, 1, -1}) < config_.sliding_window);
  }
  return additive_mask(allowed, dtype_);  // [B, 1, T, S]
}

at::Tensor Transformer::layer_forward(const Layer& layer, const at::Tensor& x, const at::Tensor& cos,
                                      const at::Tensor& sin, const at::Tensor& mask, const CacheWrite* cache,
                                      const PackedAttention* blocks, std::optional<uint64_t> lora_dropout_seed) const {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  const int64_t H = config_.num_attention_heads, Hkv = config_.num_key_value_heads, D = config_.head_dim;
  const double eps = config_.rms_norm_eps;
  // LoRA (model/lora.h): an adapted projection adds its term to the base product, fused or not.
  const LoraAdapters* lora = lora_.get();
  std::optional<at::Generator> dropout_masks;
  if (lora && lora_dropout_seed) dropout_masks = at::detail::createCPUGenerator(*lora_dropout_seed);
  // The adapters read their input in fp32: cast once per input, shared by its projections.
  auto adapt = [&](LoraSite site, const at::Tensor& input, at::Tensor& input_fp32, const at::Tensor& output) {
    const LoraModule* m = lora ? lora->find(layer.index, site) : nullptr;
    if (m == nullptr) return output;
    if (!input_fp32.defined()) input_fp32 = input.to(at::kFloat);
    return lora->apply(*m, input_fp32, output, dropout_masks ? &*dropout_masks : nullptr);
  };

  // Attention block.
  at::Tensor h = rms_norm(x, layer.input_norm, eps).view({B * T, C});    // [B*T, C]
  // The fused products give no gradient to the separate parameter views: use them only
  // when this layer's weights are not being trained (the same test as project()).
  const bool weight_grads = at::GradMode::is_enabled() && layer.q_weight.requires_grad();
  at::Tensor q, k, v, h_fp32;
  if (weight_grads) {
    q = adapt(LoraSite::q, h, h_fp32, project(h, layer.q_weight, layer.q_bias)).view({B, T, H, D});
    k = adapt(LoraSite::k, h, h_fp32, project(h, layer.k_weight, layer.k_bias)).view({B, T, Hkv, D});
    v = adapt(LoraSite::v, h, h_fp32, project(h, layer.v_weight, layer.v_bias)).view({B, T, Hkv, D});
  } else {
    at::Tensor qkv = project(h, layer.qkv_weight, layer.qkv_bias);  // [B*T, (H+2Hkv)*D]
    q = adapt(LoraSite::q, h, h_fp32, qkv.narrow(1, 0, H * D)).view({B, T, H, D});
    k = adapt(LoraSite::k, h, h_fp32, qkv.narrow(1, H * D, Hkv * D)).view({B, T, Hkv, D});
    v = adapt(LoraSite::v, h, h_fp32, qkv.narrow(1, (H + Hkv) * D, Hkv * D)).view({B, T, Hkv, D});
  }
  if (config_.qk_norm) {
    q = rms_norm(q, layer.q_norm, eps);
    k = rms_norm(k, layer.k_norm, eps);
  }
  q = apply_rope(q, cos, sin).transpose(1, 2);  // [B, H, T, D]
  k = apply_rope(k, cos, sin);                  // [B, T, Hkv, D]
  at::Tensor keys, values;                      // [B, Hkv, S, D]
  if (cache == nullptr) {
    keys = k.transpose(1, 2);
    values = v.transpose(1, 2);
  } else if (cache->write_positions.defined()) {
    // One token per slot (T == 1): scatter [S, Hkv, 1, D] into [S, Hkv, max_tokens, D] at
    // each slot's position, then attend over its first key_length positions (masked).
    at::Tensor& key_store = cache->cache->keys(cache->layer);
    at::Tensor& value_store = cache->cache->values(cache->layer);
    at::Tensor index = cache->write_positions.view({B, 1, 1, 1}).expand({B, Hkv, 1, D});
    key_store.scatter_(2, index, k.transpose(1, 2));
    value_store.scatter_(2, index, v.transpose(1, 2));
    keys = key_store.narrow(2, 0, cache->key_length);
    values = value_store.narrow(2, 0, cache->key_length);
  } else {
    // Store the real tokens' keys/values at (slot, position), then read the rows' slots.
    at::Tensor& key_store = cache->cache->keys(cache->layer);      // [slots, Hkv, max_tokens, D]
    at::Tensor& value_store = cache->cache->values(cache->layer);
    using at::indexing::Slice;
    at::Tensor new_keys = k.reshape({B * T, Hkv, D}).index_select(0, cache->token_rows);    // [N, Hkv, D]
    at::Tensor new_values = v.reshape({B * T, Hkv, D}).index_select(0, cache->token_rows);
    key_store.index_put_({cache->slot_of, Slice(), cache->position_of}, new_keys);
    value_store.index_put_({cache->slot_of, Slice(), cache->position_of}, new_values);
    if (cache->first_slot >= 0) {
      keys = key_store.narrow(0, cache->first_slot, B).narrow(2, 0, cache->key_length);
      values = value_store.narrow(0, cache->first_slot, B).narrow(2, 0, cache->key_length);
    } else {
      keys = key_store.narrow(2, 0, cache->key_length).index_select(0, cache->slots);
      values = value_store.narrow(2, 0, cache->key_length).index_select(0, cache->slots);
    }
  }
  at::Tensor attended;  // [B*T, H*D]
  if (blocks == nullptr) {
    attended = attention(q, keys, values, mask);
  } else if (!blocks->views.empty()) {
    // One packed row (B = 1): causal attention over each view, its kept rows' outputs.
    std::vector<at::Tensor> parts;
    for (const DeviceView& view : blocks->views) {
      const auto rows = [&](const at::Tensor& t) {  // [1, heads, n, D]
        return view.rows.defined() ? t.index_select(2, view.rows) : t.narrow(2, view.start, view.length);
      };
      at::Tensor out = attention(rows(q), rows(keys), rows(values), view.mask);  // [n, H*D]
      const int64_t n = out.size(0);
      parts.push_back(view.keep == n ? out : out.narrow(0, n - view.keep, view.keep));
    }
    attended = parts.size() == 1 ? parts[0] : at::cat(parts, 0);
  } else {
    // One packed row (B = 1): each block attends within itself only.
    std::vector<at::Tensor> parts;
    for (size_t b = 0; b + 1 < blocks->starts.size(); ++b) {
      const int64_t start = blocks->starts[b], length = blocks->starts[b + 1] - start;
      parts.push_back(attention(q.narrow(2, start, length), keys.narrow(2, start, length),
                                values.narrow(2, start, length), blocks->masks[b]));
    }
    attended = parts.size() == 1 ? parts[0] : at::cat(parts, 0);
  }
  at::Tensor attended_fp32;
  at::Tensor residual =
      x + adapt(LoraSite::o, attended, attended_fp32, project(attended, layer.o_weight, layer.o_bias)).view({B, T, C});

  // MLP block: down(silu(gate(h)) * up(h)).
  h = rms_norm(residual, layer.post_norm, eps).view({B * T, C});
  h_fp32 = at::Tensor();
  at::Tensor gated, gated_fp32;  // [B*T, F]
  if (weight_grads) {
    gated = at::silu(adapt(LoraSite::gate, h, h_fp32, project(h, layer.gate_weight))) *
            adapt(LoraSite::up, h, h_fp32, project(h, layer.up_weight));
  } else if (lora) {
    const int64_t F = layer.gate_weight.size(0);
    at::Tensor gate_up = project(h, layer.gate_up_weight);  // [B*T, 2F]
    gated = at::silu(adapt(LoraSite::gate, h, h_fp32, gate_up.narrow(1, 0, F))) *
            adapt(LoraSite::up, h, h_fp32, gate_up.narrow(1, F, F));
  } else {
    const int64_t F = layer.gate_weight.size(0);
    at::Tensor gate_up = project(h, layer.gate_up_weight);  // [B*T, 2F]
    gated = at::silu(gate_up.narrow(1, 0, F)).mul_(gate_up.narrow(1, F, F));
  }
  return residual + adapt(LoraSite::down, gated, gated_fp32, project(gated, layer.down_weight)).view({B, T, C});
}

at::Tensor Transformer::forward_hidden(const at::Tensor& input_ids, const at::Tensor& attention_mask) const {
  check(input_ids.dim() == 2 && attention_mask.sizes() == input_ids.sizes(),
        "forward_hidden: input_ids and attention_mask must both be [B, T]");
  const int64_t T = input_ids.size(1);
  at::Tensor real = attention_mask.to(device_).to(at::kBool);  // [B, T]
  // Padding may hold any id; real ids must be in the vocabulary.
  at::Tensor ids = input_ids.to(device_).to(at::kLong).masked_fill(real.logical_not(), 0);
  if (ids.numel() > 0) {
    int64_t low = ids.min().item<int64_t>(), high = ids.max().item<int64_t>();
    check(low >= 0 && high < config_.vocab_size, "token id ", low < 0 ? low : high,
          " is outside the vocabulary (size ", config_.vocab_size, ")");
  }
  // Positions count real tokens only; padding gets 1 (as transformers' generate does).
  at::Tensor positions = (real.to(at::kLong).cumsum(-1) - 1).masked_fill(real.logical_not(), 1);
  auto [cos, sin] = rope_cos_sin(positions);

  // allowed[b, i, j]: key j is real, not in the future and (mistral) inside the window.
  auto bool_options = at::TensorOptions().device(device_).dtype(at::kBool);
  at::Tensor causal = at::ones({T, T}, bool_options).tril();
  if (config_.sliding_window > 0) causal = causal & at::ones({T, T}, bool_options).triu(-(config_.sliding_window - 1));
  at::Tensor allowed = causal.unsqueeze(0) & real.unsqueeze(1);  // [B, T, T]
  at::Tensor mask = additive_mask(allowed, dtype_);               // [B, 1, T, T]
  // Fused attention with right padding needs no mask: causal alone is exact for every real
  // query, and lets SDPA use its flash kernel (undefined mask = causal, fused_attention.h).
  if (fused_attention_applies(device_) && (config_.sliding_window <= 0 || T <= config_.sliding_window) &&
      right_padded(real)) {
    mask = at::Tensor();
  }

  at::Tensor x = at::embedding(embed_tokens_, ids);  // [B, T, C]
  return run_layers(x, cos, sin, mask, nullptr);
}

at::Tensor Transformer::run_layers(at::Tensor x, const at::Tensor& cos, const at::Tensor& sin,
                                   const at::Tensor& mask, std::shared_ptr<const PackedAttention> blocks) const {
  const bool checkpointed = gradient_checkpointing_ && at::GradMode::is_enabled();
  const bool lora_dropout = lora_ && lora_->dropout_active();
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = *layers_[i];
    std::optional<uint64_t> dropout_seed;
    if (lora_dropout) dropout_seed = lora_->next_dropout_seed();
    if (!checkpointed) {
      x = layer_forward(layer, x, cos, sin, mask, nullptr, blocks.get(), dropout_seed);
      continue;
    }
    // Keep only x; the layer runs again in the backward pass (model/recompute.h).
    const std::string prefix = "model.layers." + std::to_string(i) + ".";
    std::vector<at::Tensor> weights;
    for (const auto& [name, tensor] : parameters_) {
      if (name.compare(0, prefix.size(), prefix) == 0) weights.push_back(tensor);
    }
    if (lora_) {
      for (const at::Tensor& w : lora_->layer_parameters(static_cast<int64_t>(i))) weights.push_back(w);
    }
    // The same dropout seed in the forward and the recomputation: the same masks.
    x = recompute([this, &layer, cos = cos, sin = sin, mask, blocks, dropout_seed](const at::Tensor& input) {
      return layer_forward(layer, input, cos, sin, mask, nullptr, blocks.get(), dropout_seed);
    }, x, weights);
  }
  return rms_norm(x, final_norm_, config_.rms_norm_eps);
}

at::Tensor Transformer::forward_packed(const PackedTokens& packed) const {
  const int64_t N = packed.input_ids.numel();
  check(packed.input_ids.dim() == 1 && packed.positions.sizes() == packed.input_ids.sizes() &&
            packed.branches.sizes() == packed.input_ids.sizes(),
        "forward_packed: input_ids, positions and branches must all be [N]");
  check(packed.block_starts.size() >= 2 && packed.block_starts.front() == 0 && packed.block_starts.back() == N,
        "forward_packed: block_starts must run from 0 to the stream's ", N, " tokens");
  at::Tensor ids = packed.input_ids.to(device_).to(at::kLong);
  if (N > 0) {
    int64_t low = ids.min().item<int64_t>(), high = ids.max().item<int64_t>();
    check(low >= 0 && high < config_.vocab_size, "token id ", low < 0 ? low : high,
          " is outside the vocabulary (size ", config_.vocab_size, ")");
  }
  at::Tensor positions = packed.positions.to(device_).to(at::kLong);
  at::Tensor branches = packed.branches.to(device_).to(at::kLong);
  auto blocks = std::make_shared<PackedAttention>();
  blocks->starts = packed.block_starts;
  for (size_t b = 0; b + 1 < packed.block_starts.size(); ++b)
    check(packed.block_starts[b + 1] > packed.block_starts[b], "forward_packed: block ", b, " is empty");
  const bool fused = fused_attention_applies(device_);
  if (fused || packed_causal_views_)
    blocks->views = device_views(packed, config_.sliding_window, device_, dtype_, fused);
  if (blocks->views.empty()) {
    for (size_t b = 0; b + 1 < packed.block_starts.size(); ++b) {
      const int64_t start = packed.block_starts[b], length = packed.block_starts[b + 1] - start;
      at::Tensor allowed = packed_block_allowed(positions.narrow(0, start, length), branches.narrow(0, start, length),
                                                config_.sliding_window);  // [L, L]
      blocks->masks.push_back(additive_mask(allowed.unsqueeze(0), dtype_));  // [1, 1, L, L]
    }
  }
  auto [cos, sin] = rope_cos_sin(positions.unsqueeze(0));  // [1, N, 1, D]
  at::Tensor x = at::embedding(embed_tokens_, ids).unsqueeze(0);  // [1, N, C]
  return run_layers(x, cos, sin, at::Tensor(), blocks).squeeze(0);  // [N, C]
}

at::Tensor Transformer::packed_logprobs(const PackedTokens& packed, int64_t chunk_positions) const {
  at::Tensor hidden = forward_packed(packed);  // [N, C]
  at::Tensor sources = packed.score_sources.to(device_).to(at::kLong);
  at::Tensor rows = hidden.index_select(0, sources);  // [S, C]
  return chunked_target_logprobs(rows, lm_head_, packed.score_targets.to(device_).to(at::kLong), chunk_positions);
}

at::Tensor Transformer::forward_cached(const at::Tensor& input_ids, const std::vector<int64_t>& token_counts,
                                       const std::vector<int64_t>& slots, KVCache& cache) const {
  at::NoGradGuard no_grad;
  check(input_ids.dim() == 2, "forward_cached: input_ids must be [B, T]");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  check(int64_t(token_counts.size()) == B && int64_t(slots.size()) == B,
        "forward_cached: token_counts and slots need one entry per row");
  // Host-side bookkeeping: where each real token goes, and how far each row may look.
  std::vector<int64_t> token_rows, slot_of, position_of, starts(B);
  std::vector<bool> slot_used(cache.num_slots(), false);
  int64_t key_length = 1;
  bool consecutive = true;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t slot = slots[b];
    check(slot >= 0 && slot < cache.num_slots(), "forward_cached: slot ", slot, " out of range");
    check(!slot_used[slot], "forward_cached: slot ", slot, " appears twice in one batch");
    slot_used[slot] = true;
    check(token_counts[b] >= 0 && token_counts[b] <= T, "forward_cached: bad token count for row ", b);
    starts[b] = cache.length(slot);
    check(starts[b] + token_counts[b] <= cache.max_tokens(), "forward_cached: slot ", slot, " would hold ",
          starts[b] + token_counts[b], " tokens, more than the cache's ", cache.max_tokens());
    for (int64_t t = 0; t < token_counts[b]; ++t) {
      token_rows.push_back(b * T + t);
      slot_of.push_back(slot);
      position_of.push_back(starts[b] + t);
    }
    key_length = std::max(key_length, starts[b] + std::max<int64_t>(token_counts[b], 1));
    consecutive = consecutive && slot == slots[0] + b;
  }
  key_length = std::min(key_length, cache.max_tokens());
  auto long_options = at::TensorOptions().dtype(at::kLong);
  auto to_device = [&](const std::vector<int64_t>& values) {
    return at::tensor(values, long_options).to(device_);
  };

  CacheWrite write;
  write.cache = &cache;
  write.token_rows = to_device(token_rows);
  write.slot_of = to_device(slot_of);
  write.position_of = to_device(position_of);
  write.slots = to_device(slots);
  write.first_slot = consecutive ? slots[0] : -1;
  write.key_length = key_length;

  // positions[b, t] = starts[b] + t
  at::Tensor positions = to_device(starts).unsqueeze(1) + at::arange(T, long_options.device(device_));  // [B, T]
  at::Tensor mask = cached_keys_mask(positions, key_length);  // [B, 1, T, S]
  auto [cos, sin] = rope_cos_sin(positions);

  at::Tensor ids = input_ids.to(device_).to(at::kLong).clamp(0, config_.vocab_size - 1);
  at::Tensor x = at::embedding(embed_tokens_, ids);  // [B, T, C]
  for (size_t i = 0; i < layers_.size(); ++i) {
    write.layer = int64_t(i);
    x = layer_forward(*layers_[i], x, cos, sin, mask, &write);
  }
  for (int64_t b = 0; b < B; ++b) cache.set_length(slots[b], starts[b] + token_counts[b]);
  return rms_norm(x, final_norm_, config_.rms_norm_eps);
}

at::Tensor Transformer::forward_decode_slots(const at::Tensor& input_ids, const at::Tensor& positions,
                                             KVCache& cache, int64_t key_length) const {
  at::NoGradGuard no_grad;
  const int64_t S = cache.num_slots();
  check(input_ids.dim() == 2 && input_ids.size(0) == S && input_ids.size(1) == 1 && positions.dim() == 1 &&
            positions.size(0) == S,
        "forward_decode_slots: input_ids must be [S, 1] and positions [S], S = the cache's ", S, " slots");
  check(input_ids.device().type() == device_.type() && positions.device().type() == device_.type(),
        "forward_decode_slots: input_ids and positions must be on the model's device");
  check(key_length >= 0 && key_length <= cache.max_tokens(), "forward_decode_slots: key_length ", key_length,
        " outside [0, ", cache.max_tokens(), "]");
  if (key_length == 0) key_length = cache.max_tokens();
  CacheWrite write;
  write.cache = &cache;
  write.key_length = key_length;
  write.write_positions = positions.clamp(0, cache.max_tokens() - 1);  // [S]
  at::Tensor position_grid = write.write_positions.unsqueeze(1);       // [S, 1]
  at::Tensor mask = cached_keys_mask(position_grid, key_length);       // [S, 1, 1, K]
  auto [cos, sin] = rope_cos_sin(position_grid);
  at::Tensor x = at::embedding(embed_tokens_, input_ids.clamp(0, config_.vocab_size - 1));  // [S, 1, C]
  for (size_t i = 0; i < layers_.size(); ++i) {
    write.layer = int64_t(i);
    x = layer_forward(*layers_[i], x, cos, sin, mask, &write);
  }
  return rms_norm(x, final_norm_, config_.rms_norm_eps);
}

at::Tensor Transformer::logits(const at::Tensor& hidden) const {
  std::vector<int64_t> shape = hidden.sizes().vec();
  shape.back() = config_.vocab_size;
  at::Tensor flat = hidden.reshape({-1, hidden.size(-1)});  // [N, C]
  at::ScalarType type = dtype_ == at::kDouble ? at::kDouble : at::kFloat;  // fp64 for gradient checks only
  return project(flat, lm_head_).to(type).view(shape);
}

at::Tensor Transformer::target_logprobs(const at::Tensor& hidden, const at::Tensor& targets,
                                        int64_t chunk_positions) const {
  check(hidden.dim() >= 2 && targets.sizes() == hidden.sizes().slice(0, hidden.dim() - 1),
        "target_logprobs: targets must have hidden's shape without its last dimension");
  at::Tensor flat = hidden.reshape({-1, hidden.size(-1)});  // [N, C]
  at::Tensor flat_targets = targets.to(device_).to(at::kLong).reshape({-1});
  at::Tensor result = chunked_target_logprobs(flat, lm_head_, flat_targets, chunk_positions);  // [N]
  return result.view(targets.sizes());
}

at::Tensor Transformer::token_logprobs(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                       int64_t chunk_positions) const {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  at::Tensor hidden = forward_hidden(input_ids, attention_mask);  // [B, T, C]
  if (T < 2) return at::zeros({B, T}, hidden.options().dtype(dtype_ == at::kDouble ? at::kDouble : at::kFloat));
  at::Tensor real = attention_mask.to(device_).to(at::kBool);
  // Position t predicts token t+1 when both are real.
  at::Tensor predicts = real.narrow(1, 0, T - 1) & real.narrow(1, 1, T - 1);  // [B, T-1]
  at::Tensor targets = input_ids.to(device_).to(at::kLong).narrow(1, 1, T - 1).masked_fill(predicts.logical_not(), -1);
  at::Tensor logprobs = target_logprobs(hidden.narrow(1, 0, T - 1), targets, chunk_positions);  // [B, T-1]
  return at::cat({at::zeros({B, 1}, logprobs.options()), logprobs}, 1);
}

}  // namespace spinlm
