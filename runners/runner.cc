#include "runners/runner.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace dagd::runners {

absl::Status RefuseArtifacts(const AttemptSpec& spec, std::string_view runner_name) {
  if (spec.resolved.inputs.artifacts.empty() && spec.resolved.outputs.artifacts.empty()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "template \"", spec.resolved.name, "\" passes artifacts, which the ",
      std::string(runner_name),
      " runner does not move yet (only the local runner does); run it with `runner: local` or "
      "pass the data as parameters"));
}

absl::Status RunnerRegistry::Register(const std::string& name, std::unique_ptr<Runner> runner) {
  if (name.empty()) return absl::InvalidArgumentError("a runner needs a name");
  if (runner == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("runner \"", name, "\" is null"));
  }
  auto [it, inserted] = runners_.try_emplace(name, std::move(runner));
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("a runner named \"", name, "\" is already registered"));
  }
  return absl::OkStatus();
}

Runner* RunnerRegistry::Find(const std::string& name) const {
  auto it = runners_.find(name);
  return it == runners_.end() ? nullptr : it->second.get();
}

std::vector<std::string> RunnerRegistry::Names() const {
  std::vector<std::string> names;
  names.reserve(runners_.size());
  for (const auto& [name, runner] : runners_) names.push_back(name);
  return names;
}

void RunnerRegistry::KillAll() {
  for (auto& [name, runner] : runners_) runner->KillAll();
}

}  // namespace dagd::runners
