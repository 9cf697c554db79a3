#include "runners/builtin.h"

#include <memory>

#include "runners/local/local_runner.h"

namespace dagd::runners {

absl::Status RegisterBuiltinRunners(RunnerRegistry* registry, const BuiltinRunnerOptions& options) {
  if (options.io_context == nullptr) {
    return absl::InvalidArgumentError("RegisterBuiltinRunners needs the scheduler's io_context");
  }
  return registry->Register(
      "local", std::make_unique<local::LocalRunner>(*options.io_context, options.local));
}

}  // namespace dagd::runners
