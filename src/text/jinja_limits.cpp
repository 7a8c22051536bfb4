#include "text/jinja_limits.h"

#include "text/jinja_value.h"

namespace spinlm::jinja {
namespace {

thread_local RenderLimits* current_render = nullptr;
thread_local int value_depth = 0;

std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

RenderLimits::RenderLimits() : previous_(current_render) { current_render = this; }

RenderLimits::~RenderLimits() { current_render = previous_; }

RenderLimits* RenderLimits::current() { return current_render; }

void check_string_bytes(size_t bytes) {
  if (current_render == nullptr || bytes <= kMaxStringBytes) return;
  raise("the template builds a string of " + std::to_string(bytes) + " bytes, more than the " +
        mib(kMaxStringBytes) + " a template may build (kMaxStringBytes, src/text/jinja_limits.h)");
}

void check_items(size_t items) {
  if (current_render == nullptr || items <= kMaxItems) return;
  raise("the template builds a sequence of " + std::to_string(items) + " items, more than the " +
        std::to_string(kMaxItems) + " a template may build (kMaxItems, src/text/jinja_limits.h)");
}

void note_built(size_t bytes) {
  if (current_render == nullptr) return;
  current_render->built_bytes += bytes;
  if (current_render->built_bytes <= kMaxBuiltBytes) return;
  raise("the template built more than " + mib(kMaxBuiltBytes) +
        " of strings and lists in one render (kMaxBuiltBytes, src/text/jinja_limits.h)");
}

void check_output(const std::string& out, size_t grown_by) {
  if (current_render == nullptr) return;
  if (out.size() > kMaxOutputBytes) {
    raise("the template's output grew to " + std::to_string(out.size()) + " bytes, more than the " +
          mib(kMaxOutputBytes) + " a render may write (kMaxOutputBytes, src/text/jinja_limits.h)");
  }
  note_built(grown_by);
}

void count_loop_iteration() {
  if (current_render == nullptr) return;
  if (++current_render->loop_iterations <= kMaxLoopIterations) return;
  raise("the template's for loops ran more than " + std::to_string(kMaxLoopIterations) +
        " iterations in one render (kMaxLoopIterations, src/text/jinja_limits.h)");
}

RenderDepthGuard::RenderDepthGuard() : limits_(current_render) {
  if (limits_ == nullptr) return;
  if (++limits_->render_depth > kMaxRenderDepth) {
    --limits_->render_depth;
    raise("maximum recursion depth exceeded: the template nests statements, expressions and "
          "macro calls more than " + std::to_string(kMaxRenderDepth) +
          " deep (kMaxRenderDepth, src/text/jinja_limits.h)");
  }
  if (++limits_->render_steps > kMaxRenderSteps) {
    --limits_->render_depth;
    raise("the template evaluated more than " + std::to_string(kMaxRenderSteps) +
          " statements and expressions in one render (kMaxRenderSteps, src/text/jinja_limits.h)");
  }
}

RenderDepthGuard::~RenderDepthGuard() {
  if (limits_ != nullptr) --limits_->render_depth;
}

ValueDepthGuard::ValueDepthGuard(const char* what) {
  if (++value_depth > kMaxValueDepth) {
    --value_depth;
    raise(std::string("maximum recursion depth exceeded while ") + what + " a value nested deeper than " +
          std::to_string(kMaxValueDepth) + " (kMaxValueDepth, src/text/jinja_limits.h)");
  }
}

ValueDepthGuard::~ValueDepthGuard() { --value_depth; }

}  // namespace spinlm::jinja
