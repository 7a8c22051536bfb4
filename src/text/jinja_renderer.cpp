#include "text/jinja_renderer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <unordered_map>

#include "text/jinja_builtins.h"
#include "text/jinja_limits.h"

namespace spinlm::jinja {
namespace {

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { Normal, Break, Continue };

[[noreturn]] void fail_undefined(const Value& v) {
  raise(v.text.empty() ? "undefined value used" : v.text);
}

// Python integers are unbounded; spinlm's are 64-bit and say so instead of wrapping.
int64_t checked(bool overflowed, int64_t value) {
  if (overflowed) raise("integer overflow: the result does not fit in 64 bits");
  return value;
}

int64_t add_int(int64_t x, int64_t y) {
  int64_t r = 0;
  const bool overflowed = __builtin_add_overflow(x, y, &r);
  return checked(overflowed, r);
}
int64_t sub_int(int64_t x, int64_t y) {
  int64_t r = 0;
  const bool overflowed = __builtin_sub_overflow(x, y, &r);
  return checked(overflowed, r);
}
int64_t mul_int(int64_t x, int64_t y) {
  int64_t r = 0;
  const bool overflowed = __builtin_mul_overflow(x, y, &r);
  return checked(overflowed, r);
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  const bool numbers = a.is_number() && b.is_number();
  const bool floats = a.kind == Kind::Float || b.kind == Kind::Float;
  auto unsupported = [&]() -> Value {
    raise("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  };
  if (op == "+") {
    if (numbers) return floats ? Value::from_float(as_double(a, op) + as_double(b, op)) : Value::from_int(add_int(as_int(a, op), as_int(b, op)));
    if (a.is_string() && b.is_string()) {
      check_string_bytes(a.text.size() + b.text.size());
      return Value::from_string(a.text + b.text);
    }
    if (a.is_string()) raise("can only concatenate str (not \"" + type_name(b) + "\") to str");
    if (a.kind == b.kind && a.is_sequence()) {
      check_items(a.list->size() + b.list->size());
      List joined = *a.list;
      joined.insert(joined.end(), b.list->begin(), b.list->end());
      return a.kind == Kind::Tuple ? Value::from_tuple(joined) : Value::from_list(joined);
    }
    if (a.is_sequence()) raise("can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " + type_name(a));
    return unsupported();
  }
  if (op == "*") {
    if (numbers) return floats ? Value::from_float(as_double(a, op) * as_double(b, op)) : Value::from_int(mul_int(as_int(a, op), as_int(b, op)));
    const Value* seq = (a.is_string() || a.is_sequence()) ? &a : (b.is_string() || b.is_sequence()) ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq == nullptr || (count->kind != Kind::Int && count->kind != Kind::Bool)) return unsupported();
    int64_t n = as_int(*count, op);
    if (n > 0) {
      // Checked before repeating: the size of the result must be within the limits.
      const int64_t unit = static_cast<int64_t>(seq->is_string() ? seq->text.size() : seq->list->size());
      int64_t total = 0;
      if (__builtin_mul_overflow(n, unit, &total)) total = INT64_MAX;
      if (seq->is_string()) {
        check_string_bytes(static_cast<size_t>(total));
      } else {
        check_items(static_cast<size_t>(total));
      }
    }
    if (seq->is_string()) {
      // By doubling: a few large copies instead of n small ones.
      const size_t total = n > 0 ? seq->text.size() * static_cast<size_t>(n) : 0;
      std::string out;
      out.reserve(total);
      if (total > 0) out = seq->text;
      while (out.size() < total) out.append(out, 0, std::min(out.size(), total - out.size()));
      return Value::from_string(std::move(out));
    }
    List out;
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq->list->begin(), seq->list->end());
    return seq->kind == Kind::Tuple ? Value::from_tuple(out) : Value::from_list(out);
  }
  if (op == "%" && a.is_string()) return Value::from_string(percent_format(a.text, b));
  if (!numbers) return unsupported();
  if (op == "-") return floats ? Value::from_float(as_double(a, op) - as_double(b, op)) : Value::from_int(sub_int(as_int(a, op), as_int(b, op)));
  if (op == "/") {
    double d = as_double(b, op);
    if (d == 0.0) raise("division by zero");
    return Value::from_float(as_double(a, op) / d);
  }
  if (op == "//" || op == "%") {
    if (floats) {
      double x = as_double(a, op);
      double y = as_double(b, op);
      if (y == 0.0) raise(op == "//" ? "float floor division by zero" : "float modulo");
      double m = std::fmod(x, y);
      if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
      if (op == "%") return Value::from_float(m);
      double quotient = (x - m) / y;  // CPython's float_floor_div
      double floored = std::floor(quotient);
      if (quotient - floored > 0.5) floored += 1.0;
      return Value::from_float(floored);
    }
    int64_t x = as_int(a, op);
    int64_t y = as_int(b, op);
    if (y == 0) raise("integer division or modulo by zero");
    if (x == INT64_MIN && y == -1) raise("integer overflow: the result does not fit in 64 bits");
    int64_t q = x / y;
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) {
      q -= 1;
      r += y;
    }
    return Value::from_int(op == "//" ? q : r);
  }
  if (op == "**") {
    if (!floats && as_int(b, op) >= 0) {
      int64_t base = as_int(a, op);
      int64_t exponent = as_int(b, op);
      if (base == 0 || base == 1) return Value::from_int(exponent == 0 ? 1 : base);
      if (base == -1) return Value::from_int(exponent % 2 == 0 ? 1 : -1);
      int64_t result = 1;
      for (; exponent > 0; --exponent) result = mul_int(result, base);  // overflows within 63 steps
      return Value::from_int(result);
    }
    return Value::from_float(std::pow(as_double(a, op), as_double(b, op)));
  }
  return unsupported();
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "<") return less_than(a, b);
  if (op == ">") return less_than(b, a);
  if (op == "<=") return less_than(a, b) || equals(a, b);
  if (op == ">=") return less_than(b, a) || equals(a, b);
  if (op == "in") return value_contains(b, a);
  if (op == "notin") return !value_contains(b, a);
  raise("unknown comparison " + op);
}

class Renderer {
 public:
  explicit Renderer(const Value& context) {
    globals_ = std::make_shared<Scope>();
    install_globals(*globals_);
    auto context_scope = std::make_shared<Scope>();
    context_scope->parent = globals_;
    for (const auto& item : context.dict->items) context_scope->vars[to_str(item.first)] = item.second;
    root_ = std::make_shared<Scope>();
    root_->parent = context_scope;
  }

  // A namespace can hold itself ({% set ns.me = ns %}), directly or through lists and dicts:
  // a cycle of shared pointers. Every namespace this render made is emptied when the render
  // ends, normally or by an error, so such a cycle is freed with it.
  ~Renderer() {
    for (const std::weak_ptr<Object>& made : namespaces_)
      if (std::shared_ptr<Object> ns = made.lock()) ns->attributes.items.clear();
  }
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  std::string run(const Program& program) {
    std::string out;
    exec_body(program.body, root_, out);
    return out;
  }

 private:
  // ---- globals ----
  void remember_namespace(const std::shared_ptr<Object>& ns) {
    if (namespaces_.size() >= prune_namespaces_at_) {  // drop the ones already freed (amortised)
      namespaces_.erase(std::remove_if(namespaces_.begin(), namespaces_.end(),
                                       [](const std::weak_ptr<Object>& w) { return w.expired(); }),
                        namespaces_.end());
      prune_namespaces_at_ = std::max<size_t>(64, 2 * namespaces_.size());
    }
    namespaces_.push_back(ns);
  }

  void install_globals(Scope& g) {
    g.vars["raise_exception"] = make_callable("raise_exception", [](const CallArgs& a) -> Value {
      const Value* message = a.get(0, "message");
      raise(message ? to_str(*message) : "");
    });
    g.vars["strftime_now"] = make_callable("strftime_now", [](const CallArgs& a) {
      const Value* format = a.get(0, "format");
      std::time_t now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buffer[512];
      size_t n = std::strftime(buffer, sizeof buffer, format ? to_str(*format).c_str() : "", &local);
      return Value::from_string(std::string(buffer, n));
    });
    g.vars["range"] = make_callable("range", [](const CallArgs& a) {
      int64_t start = 0;
      int64_t stop = 0;
      int64_t step = 1;
      if (a.positional.size() == 1) {
        stop = as_int(a.positional[0], "range");
      } else if (a.positional.size() >= 2) {
        start = as_int(a.positional[0], "range");
        stop = as_int(a.positional[1], "range");
        if (a.positional.size() >= 3) step = as_int(a.positional[2], "range");
      } else {
        raise("range expected at least 1 argument, got 0");
      }
      if (step == 0) raise("range() arg 3 must not be zero");
      List out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (static_cast<int64_t>(out.size()) >= kMaxRange) raise("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        out.push_back(Value::from_int(i));
      }
      return Value::from_list(out);
    });
    g.vars["namespace"] = make_callable("namespace", [this](const CallArgs& a) {
      Value ns;
      ns.kind = Kind::Object;
      ns.object = std::make_shared<Object>();
      remember_namespace(ns.object);
      ns.object->type_name = "Namespace";
      for (const Value& p : a.positional) {
        if (p.kind != Kind::Dict) raise("namespace() positional argument must be a dict");
        for (const auto& item : p.dict->items) ns.object->attributes.set(item.first, item.second);
      }
      for (const auto& kw : a.keywords) ns.object->attributes.set(Value::from_string(kw.first), kw.second);
      return ns;
    });
    g.vars["dict"] = make_callable("dict", [](const CallArgs& a) {
      Value d = Value::new_dict();
      for (const Value& p : a.positional) {
        if (p.kind != Kind::Dict) raise("dict() positional argument must be a dict");
        for (const auto& item : p.dict->items) d.dict->set(item.first, item.second);
      }
      for (const auto& kw : a.keywords) d.dict->set(Value::from_string(kw.first), kw.second);
      return d;
    });
  }

  // ---- variables ----
  static Value lookup(const ScopePtr& scope, const std::string& name) {
    for (const Scope* s = scope.get(); s != nullptr; s = s->parent.get()) {
      auto found = s->vars.find(name);
      if (found != s->vars.end()) return found->second;
    }
    return Value::undefined("'" + name + "' is undefined");
  }

  static void assign(const Target& target, const Value& value, const ScopePtr& scope) {
    if (!target.attribute.empty()) {
      Value ns = lookup(scope, target.names[0]);
      if (ns.kind != Kind::Object || ns.object->type_name != "Namespace") {
        raise("cannot assign attribute on non-namespace object");
      }
      ns.object->attributes.set(Value::from_string(target.attribute), value);
      return;
    }
    if (!target.tuple) {
      scope->vars[target.names[0]] = value;
      return;
    }
    List items = iterate(value);
    if (items.size() < target.names.size()) {
      raise("not enough values to unpack (expected " + std::to_string(target.names.size()) + ", got " +
            std::to_string(items.size()) + ")");
    }
    if (items.size() > target.names.size()) {
      raise("too many values to unpack (expected " + std::to_string(target.names.size()) + ")");
    }
    for (size_t i = 0; i < items.size(); ++i) scope->vars[target.names[i]] = items[i];
  }

  // ---- statements ----
  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const auto& stmt : body) {
      Flow flow = exec(*stmt, scope, out);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
    try {
      RenderDepthGuard depth;
      return exec_unchecked(s, scope, out);
    } catch (JinjaError& e) {
      // jinja2 reports an output's error at its expression's line (see jinja_parser.cpp).
      if (e.line == 0) e.line = s.kind == Stmt::Kind::Output ? s.expr->line : s.line;
      throw;
    }
  }

  // Every append to an output goes through here (kMaxOutputBytes, kMaxBuiltBytes).
  static void emit(std::string& out, const std::string& text) {
    out += text;
    check_output(out, text.size());
  }

  Flow exec_unchecked(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
      case Stmt::Kind::Text:
        emit(out, s.text);
        return Flow::Normal;
      case Stmt::Kind::Output:
        emit(out, to_str(eval(*s.expr, scope)));
        return Flow::Normal;
      case Stmt::Kind::If:
        for (const auto& branch : s.branches) {
          if (truthy(eval(*branch.first, scope))) return exec_body(branch.second, scope, out);
        }
        return exec_body(s.else_body, scope, out);
      case Stmt::Kind::For:
        return exec_for(s, scope, out);
      case Stmt::Kind::Set:
        assign(s.target, eval(*s.expr, scope), scope);
        return Flow::Normal;
      case Stmt::Kind::SetBlock: {
        std::string captured;
        exec_body(s.body, scope, captured);
        Value value = Value::from_string(captured);
        if (s.expr) value = apply_filter_chain(*s.expr, value, scope);
        assign(s.target, value, scope);
        return Flow::Normal;
      }
      case Stmt::Kind::Macro:
        scope->vars[s.name] = make_macro(s.name, s.params, s.body, scope);
        return Flow::Normal;
      case Stmt::Kind::CallBlock: {
        const Expr& call = *s.expr;
        Value callee = eval(*call.args[0], scope);
        CallArgs args = eval_args(call, scope, 1);
        args.keywords.emplace_back("caller", make_macro("caller", s.params, s.body, scope));
        emit(out, to_str(invoke(callee, args)));
        return Flow::Normal;
      }
      case Stmt::Kind::FilterBlock: {
        std::string captured;
        exec_body(s.body, scope, captured);
        emit(out, to_str(apply_filter_chain(*s.expr, Value::from_string(captured), scope)));
        return Flow::Normal;
      }
      case Stmt::Kind::With: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope;
        for (const auto& assignment : s.assignments) assign(assignment.first, eval(*assignment.second, scope), inner);
        return exec_body(s.body, inner, out);
      }
      case Stmt::Kind::Break:
        return Flow::Break;
      case Stmt::Kind::Continue:
        return Flow::Continue;
    }
    return Flow::Normal;
  }

  Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    Value iterable = eval(*s.expr, scope);
    List items = iterate(iterable);
    if (s.condition) {
      List kept;
      for (const Value& item : items) {
        count_loop_iteration();
        auto probe = std::make_shared<Scope>();
        probe->parent = scope;
        assign(s.target, item, probe);
        if (truthy(eval(*s.condition, probe))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      exec_body(s.else_body, scope, out);
      return Flow::Normal;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      count_loop_iteration();
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      inner->vars["loop"] = make_loop(items, i);
      assign(s.target, items[static_cast<size_t>(i)], inner);
      if (exec_body(s.body, inner, out) == Flow::Break) break;
    }
    return Flow::Normal;
  }

  static Value make_loop(const List& items, int64_t i) {
    const int64_t n = static_cast<int64_t>(items.size());
    Value loop;
    loop.kind = Kind::Object;
    loop.object = std::make_shared<Object>();
    loop.object->type_name = "LoopContext";
    Dict& a = loop.object->attributes;
    a.items.reserve(12);
    auto set = [&](const char* key, Value v) { a.items.emplace_back(Value::from_string(key), std::move(v)); };
    set("index", Value::from_int(i + 1));
    set("index0", Value::from_int(i));
    set("revindex", Value::from_int(n - i));
    set("revindex0", Value::from_int(n - i - 1));
    set("first", Value::from_bool(i == 0));
    set("last", Value::from_bool(i == n - 1));
    set("length", Value::from_int(n));
    set("depth", Value::from_int(1));
    set("depth0", Value::from_int(0));
    set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item"));
    set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item"));
    set("cycle", make_callable("loop.cycle", [i](const CallArgs& args) {
      if (args.positional.empty()) raise("no items for cycling given");
      return args.positional[static_cast<size_t>(i) % args.positional.size()];
    }));
    return loop;
  }

  Value make_macro(const std::string& name, const std::vector<std::pair<std::string, ExprPtr>>& params,
                   const Body& body, const ScopePtr& definition_scope) {
    // The syntax tree outlives every render; the defining scope is held weakly because the
    // macro is usually stored in that very scope (a strong reference would be a cycle).
    const auto* params_ptr = &params;
    const auto* body_ptr = &body;
    std::weak_ptr<Scope> weak_scope = definition_scope;
    return make_callable(name, [this, name, params_ptr, body_ptr, weak_scope](const CallArgs& args) {
      auto scope = std::make_shared<Scope>();
      scope->parent = weak_scope.lock();
      if (!scope->parent) raise("macro '" + name + "' called after its scope ended");
      // Runaway recursion fails like Python's RecursionError instead of overflowing the stack.
      if (macro_depth_ >= kMaxMacroDepth) {
        raise("maximum recursion depth exceeded: macro calls nested " + std::to_string(kMaxMacroDepth) +
              " deep (kMaxMacroDepth, src/text/jinja_limits.h)");
      }
      ++macro_depth_;
      struct DepthGuard {
        int& depth;
        ~DepthGuard() { --depth; }
      } guard{macro_depth_};
      const auto& ps = *params_ptr;
      if (args.positional.size() > ps.size()) {
        raise("macro '" + name + "' takes not more than " + std::to_string(ps.size()) + " argument(s)");
      }
      for (size_t i = 0; i < ps.size(); ++i) {
        const Value* given = args.get(i, ps[i].first);
        if (given != nullptr) {
          scope->vars[ps[i].first] = *given;
        } else if (ps[i].second) {
          scope->vars[ps[i].first] = eval(*ps[i].second, scope);
        } else {
          scope->vars[ps[i].first] = Value::undefined("parameter '" + ps[i].first + "' was not provided");
        }
      }
      for (const auto& kw : args.keywords) {
        bool known = kw.first == "caller";
        for (const auto& p : ps) known = known || p.first == kw.first;
        if (!known) raise("macro '" + name + "' takes no keyword argument '" + kw.first + "'");
        if (kw.first == "caller") scope->vars["caller"] = kw.second;
      }
      std::string rendered;
      exec_body(*body_ptr, scope, rendered);
      return Value::from_string(rendered);
    });
  }

  // ---- expressions ----
  CallArgs eval_args(const Expr& e, const ScopePtr& scope, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i], scope));
    for (const auto& kw : e.keywords) args.keywords.emplace_back(kw.first, eval(*kw.second, scope));
    return args;
  }

  static Value invoke(const Value& callee, const CallArgs& args) {
    if (callee.is_undefined()) fail_undefined(callee);
    if (callee.kind != Kind::Callable) raise("'" + type_name(callee) + "' object is not callable");
    return callee.callable->call(args);
  }

  // A filter chain parsed with a null innermost input ({% filter %} and block set).
  Value apply_filter_chain(const Expr& e, const Value& input, const ScopePtr& scope) {
    Value base = e.args[0] ? apply_filter_chain(*e.args[0], input, scope) : input;
    return call_filter(e.name, base, eval_args(e, scope, 1));
  }

  Value eval(const Expr& e, const ScopePtr& scope) {
    RenderDepthGuard depth;
    switch (e.kind) {
      case Expr::Kind::Literal: return e.literal;
      case Expr::Kind::Name: return lookup(scope, e.name);
      case Expr::Kind::Attribute: return get_attribute(eval(*e.args[0], scope), e.name);
      case Expr::Kind::Item: return get_item(eval(*e.args[0], scope), eval(*e.args[1], scope));
      case Expr::Kind::Slice: {
        auto part = [&](size_t i) { return e.args[i] ? eval(*e.args[i], scope) : Value::none(); };
        return get_slice(eval(*e.args[0], scope), part(1), part(2), part(3));
      }
      case Expr::Kind::Call: return invoke(eval(*e.args[0], scope), eval_args(e, scope, 1));
      case Expr::Kind::Filter: return call_filter(e.name, eval(*e.args[0], scope), eval_args(e, scope, 1));
      case Expr::Kind::Test: {
        bool result = call_test(e.name, eval(*e.args[0], scope), eval_args(e, scope, 1));
        return Value::from_bool(e.negated ? !result : result);
      }
      case Expr::Kind::Negate: case Expr::Kind::Plus: {
        Value v = eval(*e.args[0], scope);
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_number()) raise("bad operand type for unary " + std::string(e.kind == Expr::Kind::Negate ? "-" : "+") + ": '" + type_name(v) + "'");
        if (e.kind == Expr::Kind::Plus) return v.kind == Kind::Bool ? Value::from_int(as_int(v, "+")) : v;
        return v.kind == Kind::Float ? Value::from_float(-v.number) : Value::from_int(sub_int(0, as_int(v, "-")));
      }
      case Expr::Kind::Not: return Value::from_bool(!truthy(eval(*e.args[0], scope)));
      case Expr::Kind::And: {
        Value left = eval(*e.args[0], scope);
        return truthy(left) ? eval(*e.args[1], scope) : left;
      }
      case Expr::Kind::Or: {
        Value left = eval(*e.args[0], scope);
        return truthy(left) ? left : eval(*e.args[1], scope);
      }
      case Expr::Kind::Binary: {
        Value left = eval(*e.args[0], scope);
        Value right = eval(*e.args[1], scope);
        if (e.name == "~") {
          std::string joined = to_str(left);
          const std::string tail = to_str(right);
          check_string_bytes(joined.size() + tail.size());
          joined += tail;
          return Value::from_string(std::move(joined));
        }
        return arithmetic(e.name, left, right);
      }
      case Expr::Kind::Compare: {
        Value left = eval(*e.args[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.args[i + 1], scope);
          if (!compare(e.ops[i], left, right)) return Value::from_bool(false);
          left = right;
        }
        return Value::from_bool(true);
      }
      case Expr::Kind::Conditional: {
        if (truthy(eval(*e.args[0], scope))) return eval(*e.args[1], scope);
        return e.args[2] ? eval(*e.args[2], scope) : Value::undefined("the inline if-expression evaluated to false and no else section was defined.");
      }
      case Expr::Kind::List: case Expr::Kind::Tuple: {
        List items;
        for (const auto& item : e.args) items.push_back(eval(*item, scope));
        return e.kind == Expr::Kind::List ? Value::from_list(items) : Value::from_tuple(items);
      }
      case Expr::Kind::Dict: {
        Value d = Value::new_dict();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) d.dict->set(eval(*e.args[i], scope), eval(*e.args[i + 1], scope));
        return d;
      }
    }
    return Value::undefined();
  }

  ScopePtr globals_;
  ScopePtr root_;
  int macro_depth_ = 0;
  std::vector<std::weak_ptr<Object>> namespaces_;  // every namespace() of this render
  size_t prune_namespaces_at_ = 64;
};

}  // namespace

std::string render_program(const Program& program, const Value& context) {
  RenderLimits limits;
  Renderer renderer(context);
  return renderer.run(program);
}

}  // namespace spinlm::jinja
