// Limits a chat template cannot lift. Templates come inside tokenizer_config.json files
// that users download from strangers, and the interpreter runs them with the privileges of a
// training job, so every way a template can spend memory, time or stack is bounded here, and
// each breach is a JinjaError naming the limit (ChatTemplate turns it into an Error naming
// the template and line). Real chat templates stay far below every limit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace spinlm::jinja {

// Bytes of a template's source. Real chat templates are at most a few tens of KB.
constexpr size_t kMaxTemplateBytes = size_t{4} << 20;

// Nesting of a template's syntax: blocks inside blocks, and the depth of an expression's
// tree (brackets, unary operators, and chains of binary operators, filters, attributes and
// calls, each link one level). The parser, the renderer and the tree's destructor recurse
// over it, so a deeper source is refused when it is parsed.
constexpr int kMaxSyntaxDepth = 256;

// Macro calls nested inside each other (a runaway recursion fails with jinja2's message,
// "maximum recursion depth exceeded"); about where CPython's recursion limit stops jinja2.
constexpr int kMaxMacroDepth = 200;

// Statements and expressions the renderer is evaluating at once, across macro calls and
// the callers of call blocks: bounds the renderer's stack (about 1 KB a level, so about
// 2 MB) whatever the template nests. An ordinary template uses a few dozen levels, a
// recursive macro a few per call.
constexpr int kMaxRenderDepth = 2000;

// Statements and expressions evaluated in one render: bounds its time where no loop runs
// (a macro that calls itself twice makes 2^depth calls). An ordinary render evaluates a
// few thousand; reaching the limit takes some seconds.
constexpr int64_t kMaxRenderSteps = 50'000'000;

// Nesting of a value that printing, comparing and tojson walk (lists inside lists, a
// namespace holding itself); deeper fails like Python's RecursionError.
constexpr int kMaxValueDepth = 256;

// Items of one range() (jinja2's sandbox MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

// Iterations of all for loops of one render together, with the comparisons of `unique`
// (quadratic in its input). A loop over the messages inside a loop over the messages stays
// under it up to 2,000 messages; reaching it takes several seconds.
constexpr int64_t kMaxLoopIterations = 5'000'000;

// Bytes of any one string a template builds: a concatenation, a repetition, a filter's or
// method's result (checked before padding to a width, repeating or replacing, and while
// joining or formatting). A rendered prompt of a million tokens is about 4 MB.
constexpr size_t kMaxStringBytes = size_t{32} << 20;

// Items of any one list, tuple or dict a template builds (also the characters of a string
// it iterates over or splits).
constexpr size_t kMaxItems = 1'000'000;

// Bytes of the rendered output, and of every captured output: set blocks, macro bodies,
// call and filter blocks.
constexpr size_t kMaxOutputBytes = size_t{32} << 20;

// Bytes of all strings, list items and output one render builds, together: bounds the
// memory and the time of a render that builds many values each under the limits above.
// An ordinary render builds a small multiple of its output.
constexpr size_t kMaxBuiltBytes = size_t{1} << 30;

// The account of the render running on this thread; the checks below use it. The parser
// and the conversion of the context run outside any render and are not counted (the
// context is the caller's data, bounded by the JSON reader's limits).
class RenderLimits {
 public:
  RenderLimits();   // becomes this thread's current render
  ~RenderLimits();  // restores the previous one
  RenderLimits(const RenderLimits&) = delete;
  RenderLimits& operator=(const RenderLimits&) = delete;

  static RenderLimits* current();

  size_t built_bytes = 0;
  int64_t loop_iterations = 0;
  int64_t render_steps = 0;
  int render_depth = 0;

 private:
  RenderLimits* previous_;
};

// Fail with the named limit when a value about to be built, or just built, is too large.
// All are no-ops outside a render.
void check_string_bytes(size_t bytes);
void check_items(size_t items);
// Adds bytes to the render's built total (failing past kMaxBuiltBytes).
void note_built(size_t bytes);
// After out grew: fails past kMaxOutputBytes, and counts the growth as built.
void check_output(const std::string& out, size_t grown_by);
void count_loop_iteration();

// Held while the renderer evaluates one statement or expression (kMaxRenderDepth); each
// one counts as a step (kMaxRenderSteps).
class RenderDepthGuard {
 public:
  RenderDepthGuard();
  ~RenderDepthGuard();
  RenderDepthGuard(const RenderDepthGuard&) = delete;
  RenderDepthGuard& operator=(const RenderDepthGuard&) = delete;

 private:
  RenderLimits* limits_;
};

// Held by each level of a recursive walk over a value (kMaxValueDepth); counts per thread,
// inside a render or not. `what` names the walk in the error ("printing", "comparing").
class ValueDepthGuard {
 public:
  explicit ValueDepthGuard(const char* what);
  ~ValueDepthGuard();
  ValueDepthGuard(const ValueDepthGuard&) = delete;
  ValueDepthGuard& operator=(const ValueDepthGuard&) = delete;
};

}  // namespace spinlm::jinja
