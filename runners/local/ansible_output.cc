#include "runners/local/ansible_output.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dagd::runners::local {
namespace {

// Lines longer than this are cut; a result line is one JSON object, usually much shorter.
constexpr size_t kMaxLine = 64 * 1024;
// A message in a node's status is a summary, not the whole result.
constexpr size_t kMaxMessage = 300;
// Lines of Ansible's ERROR! text kept after the ERROR! line itself.
constexpr int kMaxErrorLines = 6;

// absl::string_view is not std::string_view in Debian's abseil.
std::string_view Strip(std::string_view text) {
  const char* kSpace = " \t\r\n";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kSpace) - begin + 1);
}

// "TASK [name] ****" → "name"; "RUNNING HANDLER [name] ****" → "name"; else empty.
std::string_view TaskName(std::string_view line) {
  for (std::string_view prefix : {"TASK [", "RUNNING HANDLER ["}) {
    if (!line.starts_with(prefix)) continue;
    line.remove_prefix(prefix.size());
    size_t end = line.rfind(']');
    return end == std::string_view::npos ? line : line.substr(0, end);
  }
  return {};
}

std::string Shorten(std::string_view text) {
  text = Strip(text);
  if (size_t newline = text.find('\n'); newline != std::string_view::npos) {
    text = Strip(text.substr(0, newline));
  }
  if (text.size() <= kMaxMessage) return std::string(text);
  return std::string(text.substr(0, kMaxMessage)) + "…";
}

// The gist of a task result: its "msg", with rc and stderr for a failed command.
std::string ResultMessage(std::string_view json_text) {
  nlohmann::json result = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!result.is_object()) return Shorten(json_text);
  std::string msg;
  if (auto it = result.find("msg"); it != result.end()) {
    msg = it->is_string() ? it->get<std::string>() : it->dump();
  }
  auto stderr_it = result.find("stderr");
  if (stderr_it != result.end() && stderr_it->is_string() && !stderr_it->empty()) {
    std::string rc;
    if (auto rc_it = result.find("rc"); rc_it != result.end()) rc = rc_it->dump();
    msg =
        absl::StrCat(msg.empty() ? "failed" : msg, rc.empty() ? "" : absl::StrCat(" (rc ", rc, ")"),
                     ": ", stderr_it->get<std::string>());
  }
  if (msg.empty()) return Shorten(json_text);
  return Shorten(msg);
}

// A host result line: `fatal: [HOST]: FAILED! => {…}`, `failed: [HOST] (item=…) => {…}`,
// `fatal: [HOST]: UNREACHABLE! => {…}`.
struct ResultLine {
  std::string host;
  bool unreachable = false;
  std::string json;  // the text after "=> "
};

bool ParseResultLine(std::string_view line, ResultLine* out) {
  for (std::string_view prefix : {"fatal: [", "failed: ["}) {
    if (!line.starts_with(prefix)) continue;
    line.remove_prefix(prefix.size());
    size_t close = line.find(']');
    if (close == std::string_view::npos) return false;
    out->host = std::string(line.substr(0, close));
    std::string_view rest = line.substr(close + 1);
    out->unreachable = rest.starts_with(": UNREACHABLE!");
    size_t arrow = rest.find("=> ");
    out->json = arrow == std::string_view::npos ? "" : std::string(rest.substr(arrow + 3));
    return true;
  }
  return false;
}

void FeedLines(std::string_view data, std::string* line,
               const std::function<void(std::string_view)>& on_line) {
  while (!data.empty()) {
    size_t newline = data.find('\n');
    std::string_view piece = data.substr(0, newline);
    if (line->size() < kMaxLine) line->append(piece.substr(0, kMaxLine - line->size()));
    if (newline == std::string_view::npos) return;
    on_line(*line);
    line->clear();
    data.remove_prefix(newline + 1);
  }
}

}  // namespace

void AnsibleOutputScanner::FeedStdout(std::string_view data) {
  FeedLines(data, &stdout_line_, [this](std::string_view line) { OnStdoutLine(line); });
}

void AnsibleOutputScanner::FeedStderr(std::string_view data) {
  FeedLines(data, &stderr_line_, [this](std::string_view line) { OnStderrLine(line); });
}

void AnsibleOutputScanner::OnStdoutLine(std::string_view line) {
  if (collecting_) {  // a result printed as indented JSON (-vvv): up to the closing brace
    pending_json_.append(line).append("\n");
    if (line == "}" || pending_json_.size() >= kMaxLine) {
      collecting_ = false;
      OnResult(pending_host_, pending_unreachable_, pending_json_);
      pending_json_.clear();
    }
    return;
  }
  if (std::string_view task = TaskName(line); !task.empty()) {
    task_ = std::string(task);
    return;
  }
  if (line == "...ignoring") {  // the failure just above was ignore_errors'd
    failure_.clear();
    return;
  }
  ResultLine result;
  if (!ParseResultLine(line, &result)) return;
  if (result.json == "{") {
    collecting_ = true;
    pending_host_ = result.host;
    pending_unreachable_ = result.unreachable;
    pending_json_ = "{\n";
    return;
  }
  OnResult(result.host, result.unreachable, result.json);
}

void AnsibleOutputScanner::OnResult(const std::string& host, bool unreachable,
                                    std::string_view json) {
  const std::string message = ResultMessage(json);
  if (unreachable) {
    if (std::find(unreachable_hosts_.begin(), unreachable_hosts_.end(), host) ==
        unreachable_hosts_.end()) {
      unreachable_hosts_.push_back(host);
    }
    if (unreachable_message_.empty()) unreachable_message_ = message;
    return;
  }
  // A loop's summary ("One or more items failed") says less than the item that failed.
  if (message.starts_with("One or more items failed") && !failure_.empty()) return;
  failure_ = absl::StrCat("task \"", task_, "\" failed on ", host, ": ", message);
}

void AnsibleOutputScanner::OnStderrLine(std::string_view line) {
  // "[WARNING]:  * Failed to parse SOURCE with PLUGIN plugin: WHY", wrapped over lines: the
  // reason behind "No inventory was parsed". The first such warning is kept.
  if (collecting_inventory_warning_) {
    if (line.starts_with("[") || line.starts_with("ERROR! ") || Strip(line).empty()) {
      collecting_inventory_warning_ = false;
    } else {
      // Ansible wraps warnings at 80 columns, also after a hyphen ("dagd-" / "inventory.ini").
      if (!inventory_warning_.ends_with('-')) inventory_warning_.push_back(' ');
      inventory_warning_.append(Strip(line));
      if (inventory_warning_.size() > kMaxMessage) collecting_inventory_warning_ = false;
    }
  }
  if (inventory_warning_.empty() && line.starts_with("[WARNING]:  * Failed to parse ")) {
    inventory_warning_ = std::string(Strip(line.substr(14)));
    collecting_inventory_warning_ = true;
  }
  if (error_lines_ >= 0 && !error_.empty()) {
    std::string_view text = Strip(line);
    if (line.starts_with("[WARNING]") || line.starts_with("[DEPRECATION") ||
        ++error_lines_ > kMaxErrorLines) {
      error_lines_ = -1;
    } else if (!text.empty()) {
      error_.append(" ").append(text);
    }
    return;
  }
  if (error_.empty() && line.starts_with("ERROR! ")) {
    error_ = std::string(Strip(line.substr(7)));
  } else if (usage_error_.empty() && line.starts_with("ansible-playbook: error: ")) {
    usage_error_ = std::string(Strip(line.substr(25)));
  }
}

void AnsibleOutputScanner::FeedEvent(std::string_view json_line) {
  if (json_line.find("\"stats\"") == std::string_view::npos) return;  // cheap pre-filter
  nlohmann::json event = nlohmann::json::parse(json_line, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object() || event.value("kind", "") != "stats") return;
  auto custom = event.find("custom_stats");
  if (custom == event.end() || !custom->is_object()) return;
  // Ansible keeps run-wide set_stats data under the host name "_run" (AggregateStats).
  auto run = custom->find("_run");
  if (run != custom->end() && run->is_object()) custom_stats_ = *run;
}

engine::AttemptResult AnsibleOutputScanner::Classify(int exit_code) const {
  engine::AttemptResult result;
  result.phase = engine::NodePhase::kError;
  if (!unreachable_hosts_.empty()) {
    result.message = absl::StrCat(unreachable_hosts_.size() == 1 ? "host " : "hosts ",
                                  absl::StrJoin(unreachable_hosts_, ", "),
                                  " unreachable: ", unreachable_message_);
  } else if (!failure_.empty()) {
    result.phase = engine::NodePhase::kFailed;
    result.message = failure_;
  } else if (!error_.empty()) {
    std::string error = error_;
    if (error.size() > 2 * kMaxMessage) error = absl::StrCat(error.substr(0, 2 * kMaxMessage), "…");
    result.message = absl::StrCat("playbook error: ", error);
    if (error.starts_with("No inventory was parsed") && !inventory_warning_.empty()) {
      result.message = absl::StrCat("inventory error: ", Shorten(inventory_warning_));
    }
  } else if (!usage_error_.empty()) {
    result.message = absl::StrCat("ansible-playbook rejected its options: ", usage_error_);
  } else {
    if (exit_code == 2) result.phase = engine::NodePhase::kFailed;
    result.message = absl::StrCat("ansible-playbook failed: exit code ", exit_code);
  }
  return result;
}

namespace {

std::string UnansweredPromptIn(const std::string& playbook_yaml, const std::filesystem::path& dir,
                               const std::set<std::string>& answered, int depth) {
  YAML::Node plays;
  try {
    plays = YAML::Load(playbook_yaml);
  } catch (const YAML::Exception&) {
    return "";
  }
  if (!plays.IsSequence()) return "";
  for (const YAML::Node& play : plays) {
    if (!play.IsMap()) continue;
    for (const char* key : {"import_playbook", "ansible.builtin.import_playbook"}) {
      const YAML::Node import = play[key];
      if (!import || !import.IsScalar() || depth >= 8) continue;
      const std::string& file = import.Scalar();
      if (file.find("{{") != std::string::npos) continue;  // only Ansible knows the value
      const std::filesystem::path path =
          std::filesystem::path(file).is_absolute() ? std::filesystem::path(file) : dir / file;
      std::ifstream in(path);
      if (!in) continue;
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::string prompt = UnansweredPromptIn(text, path.parent_path(), answered, depth + 1);
      if (!prompt.empty()) return prompt;
    }
    const YAML::Node prompts = play["vars_prompt"];
    if (!prompts || !prompts.IsSequence()) continue;
    for (const YAML::Node& prompt : prompts) {
      if (!prompt.IsMap() || !prompt["name"] || !prompt["name"].IsScalar()) continue;
      if (prompt["default"] && !prompt["default"].IsNull()) continue;
      const std::string name = prompt["name"].Scalar();
      if (answered.count(name) == 0) return name;
    }
  }
  return "";
}

}  // namespace

std::string UnansweredPrompt(const std::string& playbook_yaml, const std::string& playbook_dir,
                             const std::set<std::string>& answered) {
  return UnansweredPromptIn(playbook_yaml, playbook_dir, answered, 0);
}

}  // namespace dagd::runners::local
