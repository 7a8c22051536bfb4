#include "text/jinja_lexer.h"

#include <cctype>
#include <cstring>

#include "text/jinja_limits.h"
#include "text/jinja_utf8.h"

namespace spinlm::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

int count_newlines(const std::string& s, size_t begin, size_t end) {
  int n = 0;
  for (size_t i = begin; i < end; ++i) n += s[i] == '\n';
  return n;
}

// jinja2 reads the source with str.splitlines() and joins with "\n": CRLF and CR become LF and
// one final newline is dropped (keep_trailing_newline=False).
std::string normalize_source(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's "unicode-escape" decoding of a string literal's body, as jinja2 applies it.
std::string decode_string_literal(const std::string& body, int line) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    char e = body[++i];
    auto hex_escape = [&](size_t digits) {
      if (i + digits >= body.size()) {
        throw SyntaxError{"truncated \\" + std::string(1, e) + " escape in a string", line};
      }
      std::string hex = body.substr(i + 1, digits);
      for (char h : hex) {
        if (!std::isxdigit(static_cast<unsigned char>(h))) {
          throw SyntaxError{"truncated \\" + std::string(1, e) + " escape in a string", line};
        }
      }
      i += digits;
      utf8_append(out, static_cast<char32_t>(std::stoul(hex, nullptr, 16)));
    };
    switch (e) {
      case '\n': break;  // line continuation
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case 'x': hex_escape(2); break;
      case 'u': hex_escape(4); break;
      case 'U': hex_escape(8); break;
      default:
        if (e >= '0' && e <= '7') {
          int value = e - '0';
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k) {
            value = value * 8 + (body[++i] - '0');
          }
          utf8_append(out, static_cast<char32_t>(value));
        } else {
          out.push_back('\\');  // unknown escapes stay as written
          out.push_back(e);
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(const std::string& source) : src_(normalize_source(source)) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t tag = find_tag_start(pos_);
      if (tag == std::string::npos) {
        emit_text(src_.substr(pos_));
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      std::string text = src_.substr(pos_, tag - pos_);
      int text_newlines = count_newlines(src_, pos_, tag);
      text = apply_left_whitespace_control(text, kind, sign);
      emit_text(text);
      line_ += text_newlines;
      pos_ = tag + 2;
      if (sign == '-' || sign == '+') ++pos_;
      if (kind == '#') {
        lex_comment();
      } else if (kind == '%' && is_raw_block()) {
        lex_raw();
      } else {
        lex_tag(kind == '{' ? TokenType::VarBegin : TokenType::BlockBegin);
      }
    }
    tokens_.push_back(Token{TokenType::End, "", line_});
    return tokens_;
  }

 private:
  size_t find_tag_start(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  // '-' strips all whitespace before the tag; lstrip_blocks strips the spaces and tabs
  // between a line start and a block or comment tag (not an output tag) unless '+' is given.
  std::string apply_left_whitespace_control(const std::string& text, char kind, char sign) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && is_space(text[end - 1])) --end;
      return text.substr(0, end);
    }
    if (sign == '+' || kind == '{') return text;
    size_t line_begin = text.rfind('\n');
    line_begin = line_begin == std::string::npos ? 0 : line_begin + 1;
    if (line_begin == 0 && !line_starting_) return text;
    if (line_begin == text.size()) return text;
    for (size_t i = line_begin; i < text.size(); ++i) {
      if (!is_space(text[i])) return text;
    }
    return text.substr(0, line_begin);
  }

  void emit_text(const std::string& text) {
    if (!text.empty()) tokens_.push_back(Token{TokenType::Text, text, line_});
  }

  // After a closing delimiter: '-' eats all following whitespace, trim_blocks eats one
  // newline after block and comment tags, '+' keeps everything.
  void apply_right_whitespace_control(char sign, bool block_or_comment) {
    if (sign == '-') {
      size_t start = pos_;
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      line_ += count_newlines(src_, start, pos_);
    } else if (sign != '+' && block_or_comment && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
  }

  void lex_comment() {
    size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) throw SyntaxError{"Missing end of comment tag", line_};
    char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : '\0';
    line_ += count_newlines(src_, pos_, end);
    pos_ = end + 2;
    line_starting_ = false;
    apply_right_whitespace_control(sign, true);
  }

  // {% raw %} ... {% endraw %}: the body is text, untouched.
  bool is_raw_block() const {
    size_t i = pos_;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0) return false;
    i += 3;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    return src_.compare(i, 2, "%}") == 0;
  }

  void lex_raw() {
    size_t open_end = src_.find("%}", pos_);
    char open_sign = src_[open_end - 1];
    pos_ = open_end + 2;
    apply_right_whitespace_control(open_sign == '-' ? '-' : open_sign == '+' ? '+' : '\0', true);
    size_t search = pos_;
    while (true) {
      size_t tag = src_.find("{%", search);
      if (tag == std::string::npos) throw SyntaxError{"Missing end of raw directive", line_};
      size_t i = tag + 2;
      char sign = '\0';
      if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) sign = src_[i++];
      while (i < src_.size() && is_space(src_[i])) ++i;
      if (src_.compare(i, 6, "endraw") != 0) {
        search = tag + 2;
        continue;
      }
      i += 6;
      while (i < src_.size() && is_space(src_[i])) ++i;
      char close_sign = '\0';
      if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) close_sign = src_[i++];
      if (src_.compare(i, 2, "%}") != 0) {
        search = tag + 2;
        continue;
      }
      std::string body = src_.substr(pos_, tag - pos_);
      if (sign == '-') {
        while (!body.empty() && is_space(body.back())) body.pop_back();
      }
      emit_text(body);
      line_ += count_newlines(src_, pos_, i);
      pos_ = i + 2;
      apply_right_whitespace_control(close_sign, true);
      return;
    }
  }

  // The tokens inside {{ ... }} or {% ... %}, up to the closing delimiter at bracket depth 0.
  void lex_tag(TokenType begin) {
    const bool block = begin == TokenType::BlockBegin;
    tokens_.push_back(Token{begin, "", line_});
    std::string brackets;
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) {
        if (src_[pos_] == '\n') ++line_;
        ++pos_;
      }
      if (pos_ >= src_.size()) {
        throw SyntaxError{block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'", line_};
      }
      if (brackets.empty()) {
        const char* close = block ? "%}" : "}}";
        char sign = '\0';
        size_t at = pos_;
        if ((src_[at] == '-' || src_[at] == '+') && src_.compare(at + 1, 2, close) == 0) {
          sign = src_[at];
          ++at;
        }
        if (src_.compare(at, 2, close) == 0 && (sign != '+' || block)) {
          tokens_.push_back(Token{block ? TokenType::BlockEnd : TokenType::VarEnd, "", line_});
          pos_ = at + 2;
          apply_right_whitespace_control(sign, block);
          return;
        }
      }
      lex_expression_token(brackets);
    }
  }

  void lex_expression_token(std::string& brackets) {
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = pos_;
      while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      tokens_.push_back(Token{TokenType::Name, src_.substr(start, pos_ - start), line_});
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      lex_number();
      return;
    }
    if (c == '\'' || c == '"') {
      lex_string(c);
      return;
    }
    static const char* const two_char_ops[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : two_char_ops) {
      if (src_.compare(pos_, 2, op) == 0) {
        tokens_.push_back(Token{TokenType::Operator, op, line_});
        pos_ += 2;
        return;
      }
    }
    if (std::strchr("+-*/%~<>=()[]{},.:|;", c) == nullptr) {
      throw SyntaxError{std::string("unexpected char '") + c + "'", line_};
    }
    if (c == '(' || c == '[' || c == '{') {
      brackets.push_back(c);
      // The parser recurses per bracket; a bound keeps a hostile template from the stack's end.
      if (brackets.size() > static_cast<size_t>(kMaxSyntaxDepth)) {
        throw SyntaxError{"brackets nested deeper than " + std::to_string(kMaxSyntaxDepth) +
                              " (kMaxSyntaxDepth, src/text/jinja_limits.h)",
                          line_};
      }
    }
    if (c == ')' || c == ']' || c == '}') {
      char open = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (brackets.empty() || brackets.back() != open) {
        throw SyntaxError{std::string("unexpected '") + c + "'", line_};
      }
      brackets.pop_back();
    }
    tokens_.push_back(Token{TokenType::Operator, std::string(1, c), line_});
    ++pos_;
  }

  // Integers and floats as jinja2 reads them (underscores allowed between digits).
  void lex_number() {
    auto digits = [&](std::string& out) {
      while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
        if (src_[pos_] != '_') out.push_back(src_[pos_]);
        ++pos_;
      }
    };
    const bool after_dot = pos_ > 0 && src_[pos_ - 1] == '.';  // foo.0.1 is two subscripts
    std::string text;
    digits(text);
    bool is_float = false;
    if (!after_dot && pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      text.push_back('.');
      ++pos_;
      digits(text);
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t save = pos_;
      std::string exponent = "e";
      ++pos_;
      if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) exponent.push_back(src_[pos_++]);
      if (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) {
        digits(exponent);
        text += exponent;
        is_float = true;
      } else {
        pos_ = save;
      }
    }
    tokens_.push_back(Token{is_float ? TokenType::Float : TokenType::Integer, text, line_});
  }

  void lex_string(char quote) {
    size_t start = ++pos_;
    int start_line = line_;
    while (pos_ < src_.size() && src_[pos_] != quote) {
      if (src_[pos_] == '\\') ++pos_;
      ++pos_;
    }
    if (pos_ >= src_.size()) throw SyntaxError{"unexpected end of string", start_line};
    std::string body = src_.substr(start, pos_ - start);
    line_ += count_newlines(body, 0, body.size());
    ++pos_;
    tokens_.push_back(Token{TokenType::String, decode_string_literal(body, start_line), start_line});
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

}  // namespace spinlm::jinja
