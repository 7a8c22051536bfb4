#include "text/post_processor.h"

#include "core/error.h"
#include "io/json_text.h"

namespace spinlm {
namespace {

// Ids unchanged (ByteLevel only trims offsets, which spinlm does not track).
class Identity : public PostProcessor {
 public:
  std::vector<int64_t> process(std::vector<int64_t> ids) const override { return ids; }
};

// The "single" template: a list of special-token ids and the sequence itself.
class Template : public PostProcessor {
 public:
  // Each item: the ids of a special token, or an empty vector standing for the sequence.
  explicit Template(std::vector<std::vector<int64_t>> items) : items_(std::move(items)) {}
  std::vector<int64_t> process(std::vector<int64_t> ids) const override {
    std::vector<int64_t> out;
    out.reserve(ids.size() + items_.size());
    for (const auto& item : items_) {
      if (item.empty()) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else {
        out.insert(out.end(), item.begin(), item.end());
      }
    }
    return out;
  }

 private:
  std::vector<std::vector<int64_t>> items_;
};

class Sequence : public PostProcessor {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  std::vector<int64_t> process(std::vector<int64_t> ids) const override {
    for (const auto& step : steps_) ids = step->process(std::move(ids));
    return ids;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::unique_ptr<PostProcessor> make_template(const nlohmann::json& j, const std::string& where) {
  const auto& specials = j.value("special_tokens", nlohmann::json::object());
  std::vector<std::vector<int64_t>> items;
  for (const auto& piece : j.at("single")) {
    if (piece.contains("Sequence")) {
      if (piece["Sequence"].value("id", std::string("A")) != "A")
        fail(where, ": the single template may only hold sequence A");
      items.emplace_back();
    } else if (piece.contains("SpecialToken")) {
      std::string name = piece["SpecialToken"].at("id").get<std::string>();
      if (!specials.contains(name)) fail(where, ": special token \"", name, "\" missing from special_tokens");
      std::vector<int64_t> ids;
      for (const auto& id : specials[name].at("ids")) ids.push_back(json_integer(id, where + ": ids of \"" + name + "\""));
      if (ids.empty()) fail(where, ": special token \"", name, "\" has no ids");
      items.push_back(std::move(ids));
    } else {
      fail(where, ": unknown template piece ", piece.dump());
    }
  }
  return std::make_unique<Template>(std::move(items));
}

// Roberta/Bert: [cls] A [sep], with cls and sep given as [token, id].
std::unique_ptr<PostProcessor> make_wrapping(const nlohmann::json& j, const std::string& where) {
  int64_t cls = json_integer(j.at("cls").at(1), where + ": cls id");
  int64_t sep = json_integer(j.at("sep").at(1), where + ": sep id");
  return std::make_unique<Template>(std::vector<std::vector<int64_t>>{{cls}, {}, {sep}});
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  const std::string where = file + ": post_processor " + type;
  if (type == "ByteLevel") return std::make_unique<Identity>();
  if (type == "TemplateProcessing") return make_template(j, where);
  if (type == "RobertaProcessing" || type == "BertProcessing") return make_wrapping(j, where);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const auto& step : j.at("processors")) {
      auto p = make_post_processor(step, file);
      if (p) steps.push_back(std::move(p));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  fail(file, ": unsupported post_processor type \"", type, "\" (supported: TemplateProcessing, ByteLevel, ",
       "RobertaProcessing, BertProcessing, Sequence)");
}

}  // namespace spinlm
