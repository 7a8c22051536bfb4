// Templates of the demo task. Numbers stay small (at most three digits in any result) so a
// sub-million-parameter byte-level model can learn the task partly in minutes.
#include "data/arith_task.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "io/jsonl.h"

namespace spinlm {

uint64_t ArithRng::next() {
  // splitmix64 (Steele, Lea, Flood 2014).
  state_ += 0x9E3779B97F4A7C15ull;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int64_t ArithRng::uniform(int64_t low, int64_t high) {
  const uint64_t span = uint64_t(high - low) + 1;
  return low + int64_t(next() % span);  // bias below 1e-17 for these spans
}

namespace {

const char* const kNames[] = {"Tom", "Ana", "Ben", "Mia", "Sam", "Eva", "Leo", "Ivy"};
const char* const kItems[] = {"apple", "pen", "card", "egg", "book", "coin"};

std::string pick_name(ArithRng& rng) { return kNames[rng.uniform(0, 7)]; }
std::string pick_item(ArithRng& rng) { return kItems[rng.uniform(0, 5)]; }
std::string num(int64_t value) { return std::to_string(value); }

// "a+b=c. " style step.
std::string step(int64_t a, char op, int64_t b, int64_t result) {
  return num(a) + op + num(b) + "=" + num(result) + ". ";
}

std::string finish(std::string steps, int64_t answer) {
  steps.pop_back();  // the space after the last step
  return steps + "\n#### " + num(answer);
}

// Has a, buys b, gives away c: (a+b)-c or (a-c)+b.
ArithProblem buy_and_give(ArithRng& rng) {
  const int64_t a = rng.uniform(5, 30), b = rng.uniform(2, 20), c = rng.uniform(1, a - 1);
  const std::string item = pick_item(rng);
  ArithProblem p;
  p.question = pick_name(rng) + " has " + num(a) + " " + item + "s, buys " + num(b) +
               " more, gives away " + num(c) + ". How many now?";
  p.answer = a + b - c;
  p.solutions = {finish(step(a, '+', b, a + b) + step(a + b, '-', c, p.answer), p.answer),
                 finish(step(a, '-', c, a - c) + step(a - c, '+', b, p.answer), p.answer)};
  return p;
}

// a boxes of b: a*b or b*a.
ArithProblem boxes(ArithRng& rng) {
  const int64_t a = rng.uniform(2, 12), b = rng.uniform(2, 12);
  const std::string item = pick_item(rng);
  ArithProblem p;
  p.question = pick_name(rng) + " has " + num(a) + " boxes with " + num(b) + " " + item +
               "s each. How many " + item + "s?";
  p.answer = a * b;
  p.solutions = {finish(step(a, '*', b, p.answer), p.answer)};
  if (a != b) p.solutions.push_back(finish(step(b, '*', a, p.answer), p.answer));
  return p;
}

// Earns a a day for b days, spends c: a*b-c (either factor order).
ArithProblem earn_and_spend(ArithRng& rng) {
  const int64_t a = rng.uniform(2, 15), b = rng.uniform(2, 9);
  const int64_t c = rng.uniform(1, a * b - 1);
  ArithProblem p;
  p.question = pick_name(rng) + " earns " + num(a) + " dollars a day for " + num(b) +
               " days and spends " + num(c) + ". How much is left?";
  p.answer = a * b - c;
  p.solutions = {finish(step(a, '*', b, a * b) + step(a * b, '-', c, p.answer), p.answer)};
  if (a != b)
    p.solutions.push_back(finish(step(b, '*', a, a * b) + step(a * b, '-', c, p.answer), p.answer));
  return p;
}

// a shared equally among b: a/b, one solution.
ArithProblem share(ArithRng& rng) {
  const int64_t b = rng.uniform(2, 9), q = rng.uniform(2, 12);
  const std::string item = pick_item(rng);
  ArithProblem p;
  p.question = pick_name(rng) + " shares " + num(b * q) + " " + item + "s equally among " +
               num(b) + " friends. How many each?";
  p.answer = q;
  p.solutions = {finish(step(b * q, '/', b, q), q)};
  return p;
}

// a packs of b plus c singles: a*b+c or c+a*b (product first either way).
ArithProblem packs(ArithRng& rng) {
  const int64_t a = rng.uniform(2, 9), b = rng.uniform(2, 12), c = rng.uniform(1, 20);
  const std::string item = pick_item(rng);
  ArithProblem p;
  p.question = pick_name(rng) + " buys " + num(a) + " packs of " + num(b) + " " + item +
               "s and " + num(c) + " more " + item + "s. How many in total?";
  p.answer = a * b + c;
  p.solutions = {finish(step(a, '*', b, a * b) + step(a * b, '+', c, p.answer), p.answer),
                 finish(step(a, '*', b, a * b) + step(c, '+', a * b, p.answer), p.answer)};
  return p;
}

// Pages over three days: any of the three pairings first, so up to three solutions.
ArithProblem pages(ArithRng& rng) {
  const int64_t a = rng.uniform(2, 40), b = rng.uniform(2, 40), c = rng.uniform(2, 40);
  ArithProblem p;
  p.question = pick_name(rng) + " reads " + num(a) + " pages on Monday, " + num(b) +
               " on Tuesday and " + num(c) + " on Wednesday. How many pages in all?";
  p.answer = a + b + c;
  const auto two_steps = [&](int64_t x, int64_t y, int64_t z) {
    return finish(step(x, '+', y, x + y) + step(x + y, '+', z, p.answer), p.answer);
  };
  p.solutions = {two_steps(a, b, c), two_steps(a, c, b), two_steps(b, c, a)};
  return p;
}

}  // namespace

ArithProblem make_arith_problem(ArithRng& rng) {
  const int template_id = int(rng.uniform(0, kArithTemplates - 1));
  ArithProblem problem;
  switch (template_id) {
    case 0: problem = buy_and_give(rng); break;
    case 1: problem = boxes(rng); break;
    case 2: problem = earn_and_spend(rng); break;
    case 3: problem = share(rng); break;
    case 4: problem = packs(rng); break;
    default: problem = pages(rng); break;
  }
  problem.template_id = template_id;
  // Equal numbers can make two orders read the same (c == a*b, a == b): keep each text once,
  // so p_data is uniform over distinct solutions.
  std::vector<std::string> distinct;
  for (const std::string& s : problem.solutions)
    if (std::find(distinct.begin(), distinct.end(), s) == distinct.end()) distinct.push_back(s);
  problem.solutions = std::move(distinct);
  return problem;
}

ArithSplits make_arith_splits(uint64_t seed, const ArithSplitSizes& sizes) {
  check(sizes.train >= 0 && sizes.validation >= 0 && sizes.test >= 0,
        "arith task: split sizes must not be negative");
  ArithRng rng(seed);
  std::set<std::string> questions;
  ArithSplits splits;
  // Test first, then validation, then train: growing the train split later keeps the
  // evaluation problems of a smaller run unchanged.
  for (auto [split, size] : {std::pair{&splits.test, sizes.test},
                             std::pair{&splits.validation, sizes.validation},
                             std::pair{&splits.train, sizes.train}}) {
    int64_t attempts = 0;
    while (int64_t(split->size()) < size) {
      check(++attempts < 100 * size + 1000, "arith task: cannot draw ", size,
            " distinct problems; ask for fewer");
      ArithExample example;
      example.problem = make_arith_problem(rng);
      // The data distribution: one valid solution uniformly at random.
      const auto& solutions = example.problem.solutions;
      example.solution = solutions[rng.uniform(0, int64_t(solutions.size()) - 1)];
      if (!questions.insert(example.problem.question).second) continue;
      split->push_back(std::move(example));
    }
  }
  return splits;
}

nlohmann::json arith_example_json(const ArithExample& example) {
  return {{"messages",
           {{{"role", "user"}, {"content", example.problem.question}},
            {{"role", "assistant"}, {"content", example.solution}}}},
          {"answer", example.problem.answer},
          {"solutions", example.problem.solutions}};
}

void write_arith_jsonl(const std::string& path, const std::vector<ArithExample>& examples) {
  std::vector<json> rows;
  rows.reserve(examples.size());
  for (const ArithExample& example : examples) rows.push_back(arith_example_json(example));
  write_jsonl_atomic(path, rows);
}

std::optional<int64_t> extract_final_answer(const std::string& text) {
  const size_t marker = text.rfind("#### ");
  if (marker == std::string::npos) return std::nullopt;
  size_t i = marker + 5;
  bool negative = false;
  if (i < text.size() && text[i] == '-') {
    negative = true;
    ++i;
  }
  int64_t value = 0;
  int digits = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ',') continue;
    if (c < '0' || c > '9') break;
    if (++digits > 17) return std::nullopt;  // not a number this task produces
    value = value * 10 + (c - '0');
  }
  if (digits == 0) return std::nullopt;
  return negative ? -value : value;
}

bool arith_answer_correct(const std::string& response, int64_t answer) {
  const std::optional<int64_t> got = extract_final_answer(response);
  return got && *got == answer;
}

}  // namespace spinlm
