#include "runners/kubernetes/pod_log.h"

#include <utility>

#include "runners/kubernetes/ansible_pod.h"

namespace dagd::runners::kubernetes {

PodLogDemux::PodLogDemux(std::function<void(std::string_view)> on_output,
                         std::function<void(std::string_view)> on_event)
    : on_output_(std::move(on_output)), on_event_(std::move(on_event)) {}

void PodLogDemux::Feed(std::string_view data) {
  size_t start = 0;
  for (size_t end; (end = data.find('\n', start)) != std::string_view::npos; start = end + 1) {
    if (partial_.empty()) {
      OnLine(data.substr(start, end - start), true);
    } else {
      partial_.append(data.substr(start, end - start));
      std::string line = std::move(partial_);
      partial_.clear();
      OnLine(line, true);
    }
  }
  partial_.append(data.substr(start));
}

void PodLogDemux::Finish() {
  if (!partial_.empty()) {
    std::string line = std::move(partial_);
    partial_.clear();
    OnLine(line, false);
  }
  if (held_empty_line_) on_output_("\n");
  held_empty_line_ = false;
}

void PodLogDemux::OnLine(std::string_view line, bool terminated) {
  const std::string_view prefix(kEventLinePrefix);
  if (line.starts_with(prefix)) {
    held_empty_line_ = false;  // the separator the plugin wrote before the event
    line.remove_prefix(prefix.size());
    if (!line.empty()) on_event_(line);
    return;
  }
  if (held_empty_line_) {
    on_output_("\n");
    held_empty_line_ = false;
  }
  if (line.empty() && terminated) {
    held_empty_line_ = true;
    return;
  }
  std::string text(line);
  if (terminated) text.push_back('\n');
  on_output_(text);
}

}  // namespace dagd::runners::kubernetes
