// Helpers shared by the runners tests: temporary directories, templates, an io_context driver
// with a deadline, callbacks that record what a runner reports, and /proc inspection.
#ifndef DAGD_TESTS_RUNNERS_RUNNER_TEST_UTIL_H_
#define DAGD_TESTS_RUNNERS_RUNNER_TEST_UTIL_H_

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/run_state.h"
#include "engine/workflow.h"
#include "runners/runner.h"

namespace dagd::runners::testing {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Creates (if needed) and returns path()/name.
  std::string Subdir(const std::string& name) const;

 private:
  std::string path_;
};

void WriteTextFile(const std::string& path, const std::string& content);
std::string ReadTextFile(const std::string& path);

engine::Template ContainerTemplate(const std::string& name, std::vector<std::string> command,
                                   std::vector<std::string> args = {});
engine::Template ScriptTemplate(const std::string& name, std::vector<std::string> command,
                                const std::string& source);
engine::Template AnsibleTemplate(const std::string& name, engine::AnsibleSpec ansible);
// An output parameter read from `path`.
engine::Parameter PathOutput(const std::string& name, const std::string& path,
                             std::optional<std::string> default_value = std::nullopt);

AttemptSpec MakeSpec(engine::Template resolved, const std::string& external_name,
                     const std::string& work_dir);

// Runs `io` until `done()` holds or `timeout` passes; returns done().
bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done,
              std::chrono::milliseconds timeout);

// Records what a runner delivers for one attempt.
struct Recorder {
  AttemptCallbacks Callbacks();
  bool finished() const { return result.has_value(); }

  std::string stdout_text;
  std::string stderr_text;
  std::vector<std::string> events;  // on_event lines, in order
  int events_after_finish = 0;      // on_event calls after on_finished (the contract: none)
  std::optional<engine::AttemptResult> result;
  int callback_calls = 0;  // on_log, on_event and on_finished together
  int finished_calls = 0;
};

// Live (non-zombie) processes whose process group is `pgid`.
std::vector<pid_t> GroupMembers(pid_t pgid);

// Polls /proc until the group has no live member or `timeout` passes; true if it is gone.
bool WaitGroupGone(pid_t pgid, std::chrono::milliseconds timeout);

}  // namespace dagd::runners::testing

#endif  // DAGD_TESTS_RUNNERS_RUNNER_TEST_UTIL_H_
