#include "runners/local/ansible_output.h"

namespace dagd::runners::local {
namespace {

// Lines longer than this are cut: a failure message is a summary, not the whole result.
constexpr size_t kMaxLine = 400;

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

}  // namespace

void AnsibleOutputScanner::Feed(std::string_view data) {
  while (!data.empty()) {
    size_t newline = data.find('\n');
    std::string_view piece = data.substr(0, newline);
    if (line_.size() < kMaxLine) line_.append(piece.substr(0, kMaxLine - line_.size()));
    if (newline == std::string_view::npos) return;
    OnLine(line_);
    line_.clear();
    data.remove_prefix(newline + 1);
  }
}

void AnsibleOutputScanner::OnLine(std::string_view line) {
  if (std::string_view task = TaskName(line); !task.empty()) {
    task_ = std::string(task);
  } else if (line.starts_with("fatal: [") || line.starts_with("failed: [")) {
    failure_ = "task \"" + task_ + "\": " + std::string(line);
  }
}

}  // namespace dagd::runners::local
