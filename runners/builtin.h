// RegisterBuiltinRunners(): fills a RunnerRegistry with the runners dagd ships, explicitly, at
// start-up (cmd/dagd calls it once; see CONVENTIONS.md on why there is no self-registration).
//
// This is where Boost types meet the runners: runner.h stays free of them.
#ifndef DAGD_RUNNERS_BUILTIN_H_
#define DAGD_RUNNERS_BUILTIN_H_

#include <boost/asio/io_context.hpp>

#include "absl/status/status.h"
#include "runners/local/options.h"
#include "runners/runner.h"

namespace dagd::runners {

struct BuiltinRunnerOptions {
  // The scheduler's event loop: every runner delivers its callbacks on it. Required; must
  // outlive the registry.
  boost::asio::io_context* io_context = nullptr;
  local::LocalRunnerOptions local;
};

// Registers "local". InvalidArgument if options.io_context is null; AlreadyExists if a name is
// taken.
absl::Status RegisterBuiltinRunners(RunnerRegistry* registry, const BuiltinRunnerOptions& options);

}  // namespace dagd::runners

#endif  // DAGD_RUNNERS_BUILTIN_H_
