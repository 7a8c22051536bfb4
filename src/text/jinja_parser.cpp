#include "text/jinja_parser.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>

#include "text/jinja_lexer.h"
#include "text/jinja_limits.h"

namespace spinlm::jinja {
namespace {

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::Text: return "template data";
    case TokenType::VarBegin: return "begin of print statement";
    case TokenType::VarEnd: return "end of print statement";
    case TokenType::BlockBegin: return "begin of statement block";
    case TokenType::BlockEnd: return "end of statement block";
    case TokenType::End: return "end of template";
    default: return t.value;
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  std::shared_ptr<Program> run() {
    auto program = std::make_shared<Program>();
    program->body = subparse({});
    if (current().type != TokenType::End) fail("unexpected '" + describe(current()) + "'");
    return program;
  }

 private:
  // ---- token stream ----
  const Token& current() const { return tokens_[pos_]; }
  const Token& look() const { return tokens_[pos_ + 1 < tokens_.size() ? pos_ + 1 : pos_]; }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool is_op(const std::string& op) const { return current().type == TokenType::Operator && current().value == op; }
  bool is_name(const std::string& name) const { return current().type == TokenType::Name && current().value == name; }
  bool skip_op(const std::string& op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const std::string& name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& message) const { throw SyntaxError{message, current().line}; }
  [[noreturn]] void fail(const std::string& message, int line) const { throw SyntaxError{message, line}; }
  void expect_op(const std::string& op) {
    if (!skip_op(op)) fail("expected token '" + op + "', got '" + describe(current()) + "'");
  }
  std::string expect_name() {
    if (current().type != TokenType::Name) fail("expected token 'name', got '" + describe(current()) + "'");
    return next().value;
  }
  void expect_name(const std::string& name) {
    if (!skip_name(name)) fail("expected token '" + name + "', got '" + describe(current()) + "'");
  }
  void expect_type(TokenType type) {
    if (current().type != type) {
      Token wanted{type, "", 0};
      fail("expected token '" + describe(wanted) + "', got '" + describe(current()) + "'");
    }
    next();
  }

  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // A node whose children are all set: its depth is one more than its deepest child's,
  // refused past kMaxSyntaxDepth (chains of operators and filters deepen the tree without
  // deepening the parser's recursion).
  ExprPtr sealed(ExprPtr e) {
    int deepest = 0;
    for (const auto& arg : e->args) {
      if (arg) deepest = std::max(deepest, arg->depth);
    }
    for (const auto& keyword : e->keywords) {
      if (keyword.second) deepest = std::max(deepest, keyword.second->depth);
    }
    e->depth = deepest + 1;
    if (e->depth > kMaxSyntaxDepth) fail_too_deep(e->line);
    return e;
  }

  [[noreturn]] void fail_too_deep(int line) const {
    fail("the template nests deeper than " + std::to_string(kMaxSyntaxDepth) +
             " levels (kMaxSyntaxDepth, src/text/jinja_limits.h)",
         line);
  }

  // Held by each level of the parser's recursion: nested expressions and blocks.
  struct NestingGuard {
    Parser& parser;
    explicit NestingGuard(Parser& p) : parser(p) {
      if (++parser.nesting_ > kMaxSyntaxDepth) {
        --parser.nesting_;
        parser.fail_too_deep(parser.current().line);
      }
    }
    ~NestingGuard() { --parser.nesting_; }
  };

  // ---- template structure ----

  // Parses until a block tag whose name is one of end_tags (left as the current token).
  Body subparse(const std::vector<std::string>& end_tags) {
    Body body;
    while (current().type != TokenType::End) {
      const Token& t = current();
      if (t.type == TokenType::Text) {
        auto s = std::make_shared<Stmt>();
        s->kind = Stmt::Kind::Text;
        s->line = t.line;
        s->text = t.value;
        body.push_back(s);
        next();
      } else if (t.type == TokenType::VarBegin) {
        next();
        auto s = std::make_shared<Stmt>();
        s->kind = Stmt::Kind::Output;
        s->line = t.line;
        s->expr = parse_tuple(false, true, {}, false);
        expect_type(TokenType::VarEnd);
        body.push_back(s);
      } else if (t.type == TokenType::BlockBegin) {
        next();
        if (current().type == TokenType::Name) {
          for (const auto& end : end_tags) {
            if (current().value == end) return body;
          }
        }
        body.push_back(parse_statement());
        expect_type(TokenType::BlockEnd);
      } else {
        fail("unexpected '" + describe(t) + "'");
      }
    }
    return body;
  }

  // " Jinja was looking for ... The innermost block ..." for the innermost open block.
  std::string open_block_hint() const {
    if (open_blocks_.empty()) return "";
    const auto& innermost = open_blocks_.back();
    std::string expected;
    for (size_t i = 0; i < innermost.first.size(); ++i) {
      if (i > 0) expected += " or ";
      expected += "'" + innermost.first[i] + "'";
    }
    return " Jinja was looking for the following tags: " + expected +
           ". The innermost block that needs to be closed is '" + innermost.second + "'.";
  }

  [[noreturn]] void fail_eof() const { fail("Unexpected end of template." + open_block_hint()); }

  // `%}` then the body up to one of end_tags; leaves the end tag name as current token.
  Body parse_statements(const std::vector<std::string>& end_tags, const std::string& block, int line,
                        bool drop_needle) {
    skip_op(":");
    expect_type(TokenType::BlockEnd);
    NestingGuard nesting(*this);
    open_blocks_.emplace_back(end_tags, block);
    Body body = subparse(end_tags);
    if (current().type == TokenType::End) fail_eof();
    open_blocks_.pop_back();
    if (drop_needle) next();
    return body;
  }

  StmtPtr new_stmt(Stmt::Kind kind, int line) {
    auto s = std::make_shared<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  StmtPtr parse_statement() {
    if (current().type != TokenType::Name) fail("tag name expected");
    const std::string tag = current().value;
    const int line = current().line;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "print") {
      next();
      auto s = new_stmt(Stmt::Kind::Output, line);
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    if (tag == "break" || tag == "continue") {
      next();
      return new_stmt(tag == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, line);
    }
    if (tag == "include" || tag == "extends" || tag == "import" || tag == "from" || tag == "block" ||
        tag == "autoescape") {
      fail("the '" + tag + "' tag is not supported in chat templates");
    }
    fail("Encountered unknown tag '" + tag + "'." + open_block_hint());
  }

  StmtPtr parse_if() {
    const int line = next().line;
    auto s = new_stmt(Stmt::Kind::If, line);
    while (true) {
      ExprPtr condition = parse_tuple(false, false, {}, false);
      Body body = parse_statements({"elif", "else", "endif"}, "if", line, false);
      s->branches.emplace_back(condition, std::move(body));
      const std::string tag = next().value;
      if (tag == "elif") continue;
      if (tag == "else") s->else_body = parse_statements({"endif"}, "if", line, true);
      break;
    }
    return s;
  }

  StmtPtr parse_for() {
    const int line = next().line;
    auto s = new_stmt(Stmt::Kind::For, line);
    s->target = parse_assign_target(false);
    expect_name("in");
    s->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) s->condition = parse_expression(true);
    if (is_name("recursive")) fail("recursive loops are not supported");
    s->body = parse_statements({"endfor", "else"}, "for", line, false);
    if (next().value == "else") s->else_body = parse_statements({"endfor"}, "for", line, true);
    return s;
  }

  StmtPtr parse_set() {
    const int line = next().line;
    Target target = parse_assign_target(true);
    if (skip_op("=")) {
      auto s = new_stmt(Stmt::Kind::Set, line);
      s->target = target;
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    auto s = new_stmt(Stmt::Kind::SetBlock, line);
    s->target = target;
    if (is_op("|")) s->expr = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, "set", line, true);
    return s;
  }

  StmtPtr parse_macro() {
    const int line = next().line;
    auto s = new_stmt(Stmt::Kind::Macro, line);
    s->name = expect_name();
    s->params = parse_signature();
    s->body = parse_statements({"endmacro"}, "macro", line, true);
    return s;
  }

  std::vector<std::pair<std::string, ExprPtr>> parse_signature() {
    std::vector<std::pair<std::string, ExprPtr>> params;
    expect_op("(");
    bool seen_default = false;
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      std::string name = expect_name();
      ExprPtr default_value;
      if (skip_op("=")) {
        default_value = parse_expression(true);
        seen_default = true;
      } else if (seen_default) {
        fail("non-default argument follows default argument");
      }
      params.emplace_back(name, default_value);
    }
    expect_op(")");
    return params;
  }

  StmtPtr parse_call_block() {
    const int line = next().line;
    auto s = new_stmt(Stmt::Kind::CallBlock, line);
    if (is_op("(")) s->params = parse_signature();
    s->expr = parse_expression(true);
    if (s->expr->kind != Expr::Kind::Call) fail("expected call", line);
    s->body = parse_statements({"endcall"}, "call", line, true);
    return s;
  }

  StmtPtr parse_filter_block() {
    const int line = next().line;
    auto s = new_stmt(Stmt::Kind::FilterBlock, line);
    s->expr = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, "filter", line, true);
    return s;
  }

  StmtPtr parse_with() {
    const int line = next().line;
    auto s = new_stmt(Stmt::Kind::With, line);
    while (current().type != TokenType::BlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      Target target = parse_assign_target(false);
      expect_op("=");
      s->assignments.emplace_back(target, parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, "with", line, true);
    return s;
  }

  // name | name.attr (namespaces, when allowed) | a, b | (a, b)
  Target parse_assign_target(bool with_namespace) {
    Target target;
    if (with_namespace && current().type == TokenType::Name && look().type == TokenType::Operator &&
        look().value == ".") {
      target.names.push_back(next().value);
      next();
      target.attribute = expect_name();
      return target;
    }
    bool parenthesized = skip_op("(");
    while (true) {
      target.names.push_back(expect_name());
      if (!skip_op(",")) break;
      target.tuple = true;
      if (current().type != TokenType::Name) break;  // trailing comma
    }
    if (parenthesized) {
      expect_op(")");
      target.tuple = true;
    }
    for (const auto& n : target.names) {
      if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" || n == "None") {
        fail("can't assign to '" + n + "'");
      }
    }
    return target;
  }

  // ---- expressions ----

  bool is_tuple_end(const std::vector<std::string>& extra_end) const {
    const Token& t = current();
    if (t.type == TokenType::VarEnd || t.type == TokenType::BlockEnd || t.type == TokenType::End) return true;
    if (t.type == TokenType::Operator && t.value == ")") return true;
    if (t.type == TokenType::Name) {
      for (const auto& e : extra_end) {
        if (t.value == e) return true;
      }
    }
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string>& extra_end,
                      bool explicit_parentheses) {
    const int line = current().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return items[0];
      if (!explicit_parentheses) fail("Expected an expression, got '" + describe(current()) + "'");
    }
    auto e = make(Expr::Kind::Tuple, line);
    e->args = std::move(items);
    return sealed(e);
  }

  ExprPtr parse_expression(bool with_condexpr) {
    NestingGuard nesting(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    const int line = current().line;
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      auto e = make(Expr::Kind::Conditional, line);
      ExprPtr condition = parse_or();
      ExprPtr otherwise;
      if (skip_name("else")) {
        NestingGuard nesting(*this);
        otherwise = parse_condexpr();
      }
      e->args = {condition, expr, otherwise};
      expr = sealed(e);
    }
    return expr;
  }

  // Line numbers of operator chains follow jinja2: the first node takes the line where the
  // chain starts, each later one the line of its operator (errors are reported there).
  ExprPtr parse_or() {
    int line = current().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) {
      auto e = make(Expr::Kind::Or, line);
      e->args = {left, parse_and()};
      left = sealed(e);
      line = current().line;
    }
    return left;
  }

  ExprPtr parse_and() {
    int line = current().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) {
      auto e = make(Expr::Kind::And, line);
      e->args = {left, parse_not()};
      left = sealed(e);
      line = current().line;
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      const int line = next().line;
      NestingGuard nesting(*this);
      auto e = make(Expr::Kind::Not, line);
      e->args = {parse_not()};
      return sealed(e);
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = current().line;
    ExprPtr first = parse_math1();
    auto e = make(Expr::Kind::Compare, line);
    e->args.push_back(first);
    while (true) {
      const Token& t = current();
      if (t.type == TokenType::Operator &&
          (t.value == "==" || t.value == "!=" || t.value == "<" || t.value == "<=" || t.value == ">" || t.value == ">=")) {
        e->ops.push_back(next().value);
      } else if (is_name("in")) {
        next();
        e->ops.push_back("in");
      } else if (is_name("not") && look().type == TokenType::Name && look().value == "in") {
        next();
        next();
        e->ops.push_back("notin");
      } else {
        break;
      }
      e->args.push_back(parse_math1());
    }
    return e->ops.empty() ? first : sealed(e);
  }

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, int line) {
    auto e = make(Expr::Kind::Binary, line);
    e->name = op;
    e->args = {std::move(left), std::move(right)};
    return sealed(e);
  }

  ExprPtr parse_math1() {
    int line = current().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = next().value;
      left = binary(op, left, parse_concat(), line);
      line = current().line;
    }
    return left;
  }

  ExprPtr parse_concat() {
    const int line = current().line;  // jinja2's Concat node: one line for the whole chain
    ExprPtr left = parse_math2();
    while (skip_op("~")) left = binary("~", left, parse_math2(), line);
    return left;
  }

  ExprPtr parse_math2() {
    int line = current().line;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = next().value;
      left = binary(op, left, parse_pow(), line);
      line = current().line;
    }
    return left;
  }

  ExprPtr parse_pow() {
    int line = current().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) {
      left = binary("**", left, parse_unary(true), line);
      line = current().line;
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      NestingGuard nesting(*this);
      node = make(op.value == "-" ? Expr::Kind::Negate : Expr::Kind::Plus, op.line);
      node->args = {parse_unary(false)};
      node = sealed(node);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(node);
    if (with_filter) node = parse_filter_expr(node);
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = current();
    const int line = t.line;
    if (t.type == TokenType::Name) {
      next();
      auto e = make(Expr::Kind::Literal, line);
      if (t.value == "true" || t.value == "True") {
        e->literal = Value::from_bool(true);
      } else if (t.value == "false" || t.value == "False") {
        e->literal = Value::from_bool(false);
      } else if (t.value == "none" || t.value == "None") {
        e->literal = Value::none();
      } else {
        e->kind = Expr::Kind::Name;
        e->name = t.value;
      }
      return e;
    }
    if (t.type == TokenType::String) {
      std::string text;
      while (current().type == TokenType::String) text += next().value;  // adjacent literals join
      auto e = make(Expr::Kind::Literal, line);
      e->literal = Value::from_string(text);
      return e;
    }
    if (t.type == TokenType::Integer || t.type == TokenType::Float) {
      next();
      auto e = make(Expr::Kind::Literal, line);
      if (t.type == TokenType::Integer) {
        e->literal = Value::from_int(std::strtoll(t.value.c_str(), nullptr, 10));
      } else {
        e->literal = Value::from_float(std::strtod(t.value.c_str(), nullptr));
      }
      return e;
    }
    if (is_op("(")) {
      next();
      ExprPtr inner = parse_tuple(false, true, {}, true);
      expect_op(")");
      return inner;
    }
    if (is_op("[")) return parse_list();
    if (is_op("{")) return parse_dict();
    fail("unexpected '" + describe(t) + "'");
  }

  ExprPtr parse_list() {
    auto e = make(Expr::Kind::List, next().line);
    while (!is_op("]")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("]")) break;
      e->args.push_back(parse_expression(true));
    }
    expect_op("]");
    return sealed(e);
  }

  ExprPtr parse_dict() {
    auto e = make(Expr::Kind::Dict, next().line);
    while (!is_op("}")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("}")) break;
      e->args.push_back(parse_expression(true));
      expect_op(":");
      e->args.push_back(parse_expression(true));
    }
    expect_op("}");
    return sealed(e);
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(node);
      } else if (is_op("(")) {
        node = parse_call(node);
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(node, false);
      } else if (is_name("is")) {
        node = parse_test(node);
      } else if (is_op("(")) {
        node = parse_call(node);
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = next();
    if (t.value == ".") {
      const Token& attr = next();
      if (attr.type == TokenType::Name) {
        auto e = make(Expr::Kind::Attribute, t.line);
        e->name = attr.value;
        e->args = {node};
        return sealed(e);
      }
      if (attr.type != TokenType::Integer) fail("expected name or number", attr.line);
      auto index = make(Expr::Kind::Literal, attr.line);
      index->literal = Value::from_int(std::strtoll(attr.value.c_str(), nullptr, 10));
      auto e = make(Expr::Kind::Item, t.line);
      e->args = {node, index};
      return sealed(e);
    }
    std::vector<ExprPtr> subscripts;
    while (!is_op("]")) {
      if (!subscripts.empty()) expect_op(",");
      subscripts.push_back(parse_subscribed());
    }
    expect_op("]");
    if (subscripts.size() == 1 && subscripts[0]->kind == Expr::Kind::Slice) {
      subscripts[0]->args[0] = node;
      return sealed(subscripts[0]);
    }
    auto e = make(Expr::Kind::Item, t.line);
    if (subscripts.size() == 1) {
      e->args = {node, subscripts[0]};
    } else {
      auto tuple = make(Expr::Kind::Tuple, t.line);
      tuple->args = subscripts;
      e->args = {node, sealed(tuple)};
    }
    return sealed(e);
  }

  // An index or a slice start:stop:step (the slice's args[0] is filled in by the caller).
  ExprPtr parse_subscribed() {
    const int line = current().line;
    std::vector<ExprPtr> parts;
    if (is_op(":")) {
      next();
      parts.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression(true);
      if (!is_op(":")) return node;
      next();
      parts.push_back(node);
    }
    if (is_op(":")) {
      parts.push_back(nullptr);
    } else if (!is_op("]") && !is_op(",")) {
      parts.push_back(parse_expression(true));
    } else {
      parts.push_back(nullptr);
    }
    if (is_op(":")) {
      next();
      if (!is_op("]") && !is_op(",")) {
        parts.push_back(parse_expression(true));
      } else {
        parts.push_back(nullptr);
      }
    } else {
      parts.push_back(nullptr);
    }
    auto e = make(Expr::Kind::Slice, line);
    e->args = {nullptr, parts[0], parts[1], parts[2]};
    return sealed(e);  // sealed again once the sliced value is filled in
  }

  void parse_call_args(ExprPtr& e) {
    expect_op("(");
    bool need_comma = false;
    while (!is_op(")")) {
      if (need_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args and **kwargs are not supported");
      if (current().type == TokenType::Name && look().type == TokenType::Operator && look().value == "=") {
        std::string key = next().value;
        next();
        e->keywords.emplace_back(key, parse_expression(true));
      } else {
        if (!e->keywords.empty()) fail("positional argument follows keyword argument");
        e->args.push_back(parse_expression(true));
      }
      need_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    auto e = make(Expr::Kind::Call, current().line);
    e->args.push_back(node);
    parse_call_args(e);
    return sealed(e);
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".")) {
      next();
      name += "." + expect_name();
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      auto e = make(Expr::Kind::Filter, current().line);
      e->name = parse_dotted_name();
      e->args.push_back(node);
      if (is_op("(")) parse_call_args(e);
      node = sealed(e);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const int line = next().line;
    auto e = make(Expr::Kind::Test, line);
    e->negated = skip_name("not");
    e->name = parse_dotted_name();
    e->args.push_back(node);
    const Token& t = current();
    if (is_op("(")) {
      parse_call_args(e);
    } else if ((t.type == TokenType::Name || t.type == TokenType::String || t.type == TokenType::Integer ||
                t.type == TokenType::Float || is_op("[") || is_op("{")) &&
               !(is_name("else") || is_name("or") || is_name("and"))) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      e->args.push_back(parse_postfix(parse_primary()));
    }
    return sealed(e);
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  std::vector<std::pair<std::vector<std::string>, std::string>> open_blocks_;  // (end tags, block name)
  int nesting_ = 0;  // levels of the parser's recursion now open (NestingGuard)
};

}  // namespace

std::shared_ptr<Program> parse_template(const std::string& source) {
  return Parser(tokenize(source)).run();
}

}  // namespace spinlm::jinja
