// Syntax tree of a Jinja2 template: expressions and statements as the parser builds them.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja_value.h"

namespace spinlm::jinja {

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,      // literal
    Name,         // name
    Attribute,    // args[0].name
    Item,         // args[0][args[1]]
    Slice,        // args[0][args[1]:args[2]:args[3]] (null parts are absent)
    Call,         // args[0](args[1..], keywords)
    Filter,       // args[0] | name(args[1..], keywords); args[0] null in {% filter %} blocks
    Test,         // args[0] is [not] name(args[1..], keywords)
    Negate,       // -args[0]
    Plus,         // +args[0]
    Not,          // not args[0]
    Binary,       // args[0] name args[1]: + - * / // % ** ~
    And,
    Or,
    Compare,      // args[0] ops[0] args[1] ops[1] args[2] ... (chained)
    Conditional,  // args[1] if args[0] else args[2] (args[2] null: undefined)
    List,
    Tuple,
    Dict,         // keys args[0], args[2], ...; values args[1], args[3], ...
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  std::vector<std::string> ops;
  bool negated = false;  // Test: "is not"
  int depth = 1;         // levels of the tree from this node down (kMaxSyntaxDepth)
};

struct Stmt;
using StmtPtr = std::shared_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// An assignment target: a name, a tuple of names, or namespace.attribute.
struct Target {
  std::vector<std::string> names;  // one name, or several for tuple unpacking
  bool tuple = false;
  std::string attribute;           // set: names[0].attribute = ...
};

struct Stmt {
  enum class Kind {
    Text,         // text
    Output,       // {{ expr }}
    If,           // branches: (condition, body)...; else_body
    For,          // target in expr [if condition]: body; else_body
    Set,          // target = expr
    SetBlock,     // {% set target [| filters] %}body{% endset %}; expr: the filter chain or null
    Macro,        // name(params with defaults): body
    CallBlock,    // {% call [(params)] expr %}body{% endcall %}
    FilterBlock,  // {% filter expr %}body{% endfilter %}
    With,         // {% with assignments %}body{% endwith %}
    Break,
    Continue,
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  Target target;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;       // macro/caller parameters, default or null
  std::vector<std::pair<Target, ExprPtr>> assignments;       // with
};

struct Program {
  Body body;
};

}  // namespace spinlm::jinja
