#include "storage/store.h"

#include <utility>

namespace dagd::storage {

absl::StatusOr<WorkflowRecord> Store::PutWorkflow(const std::string& name, const std::string& yaml,
                                                  const std::string& entrypoint,
                                                  std::vector<BundleFile> bundle, int64_t now_ms,
                                                  bool* created) {
  std::vector<bool> inserted;
  auto records =
      PutWorkflows({WorkflowDocument{.name = name, .yaml = yaml, .entrypoint = entrypoint}},
                   std::move(bundle), now_ms, &inserted);
  if (!records.ok()) return records.status();
  if (created != nullptr) *created = inserted.front();
  return std::move(records->front());
}

const char* AnsibleResultStatus(const AnsibleEventRecord& event) {
  const std::string& kind = event.kind;
  if (kind == "runner_on_ok" || kind == "runner_item_on_ok")
    return event.changed ? "changed" : "ok";
  if (kind == "runner_on_failed" || kind == "runner_item_on_failed") return "failed";
  if (kind == "runner_on_unreachable") return "unreachable";
  if (kind == "runner_on_skipped" || kind == "runner_item_on_skipped") return "skipped";
  return "";
}

}  // namespace dagd::storage
