#include "storage/store.h"

namespace dagd::storage {

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
