// FakeRunner: a scriptable Runner (runners/runner.h) for scheduler and server tests, in the way
// ninja's FakeCommandRunner stands in for real commands. It runs nothing: each attempt ends with
// the outcome scripted for its node and attempt number.
//
// Scripts are looked up by the attempt's full node name ("<run>.B") or by any dotted suffix of it
// (the display name "B", or "outer.B" inside a nested DAG), and by attempt number (0 = every
// attempt). The most specific script wins: full name before suffix, exact attempt before 0.
// Without a script an attempt succeeds with exit code 0 (SetDefault changes that).
//
// Event loop: built on the io_context passed in, which must outlive the runner. Every method is
// called on the thread that runs that io_context, and callbacks are delivered from handlers
// posted on it — never inside Start(). Every attempt delivers its scripted log lines, then its
// scripted event lines (one handler each, in order) as soon as the loop runs; one that is not held
// then delivers on_finished. A held attempt stays running until the test calls Release() (scripted
// or given outcome), or the scheduler calls Cancel() (Failed with the cancel message, as the real
// runners); KillAll() drops every attempt without a callback. Handlers still queued on the
// io_context when an attempt was killed, or when the runner is gone, do nothing.
//
// Everything the runner is asked to do is recorded: each Start (a copy of the spec and the
// steady-clock time), each Cancel, and each KillAll.
#ifndef DAGD_TESTS_RUNNERS_FAKE_RUNNER_H_
#define DAGD_TESTS_RUNNERS_FAKE_RUNNER_H_

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/run_state.h"
#include "runners/runner.h"

namespace dagd::runners::testing {

// What one attempt does.
struct FakeAttempt {
  // The AttemptResult delivered through on_finished.
  engine::NodePhase phase = engine::NodePhase::kSucceeded;
  int exit_code = 0;
  std::string message;
  std::optional<std::string> result;
  std::map<std::string, std::string> parameters;
  // (stream, data) pairs delivered through on_log right after Start(), before on_finished (so a
  // held attempt logs while it runs).
  std::vector<std::pair<std::string, std::string>> logs;
  // Lines delivered through on_event after the logs, before on_finished.
  std::vector<std::string> events;
  // Stays running until Release(), Cancel() or KillAll().
  bool hold = false;
  // With `hold`: Cancel() is recorded but the attempt keeps running, like a process still inside
  // its grace period (or one that ignores SIGTERM). Release() or KillAll() still end it.
  bool ignore_cancel = false;
  // When not OK, Start() returns it and no callback follows (the attempt is not recorded as
  // running, but the Start is).
  absl::Status start_error;

  // Shorthands.
  static FakeAttempt Succeed(std::optional<std::string> result = std::nullopt);
  static FakeAttempt Fail(int exit_code, std::string message);
  static FakeAttempt Error(std::string message);
  static FakeAttempt Hold();
};

class FakeRunner : public Runner {
 public:
  struct StartRecord {
    AttemptSpec spec;
    std::chrono::steady_clock::time_point at;
  };
  struct CancelRecord {
    std::string external_name;
    std::string message;
    bool was_running = false;  // whether the name was a running attempt of this runner
  };

  // `io` must outlive this runner.
  explicit FakeRunner(boost::asio::io_context& io);
  ~FakeRunner() override;
  FakeRunner(const FakeRunner&) = delete;
  FakeRunner& operator=(const FakeRunner&) = delete;

  // Scripts attempt `attempt` (0 = every attempt) of the node(s) `node` names: the full node name
  // or a dotted suffix of it (see the header comment). A later script for the same key replaces
  // the earlier one.
  void Script(const std::string& node, int attempt, FakeAttempt outcome);
  void Script(const std::string& node, FakeAttempt outcome) { Script(node, 0, std::move(outcome)); }
  // The outcome of attempts no script matches.
  void SetDefault(FakeAttempt outcome) { default_ = std::move(outcome); }

  // Called inside Start(), after the start is recorded and before anything is posted; lets a test
  // observe the world (the store, say) at the moment of launch. It must not call back into the
  // runner.
  void SetStartHook(std::function<void(const AttemptSpec&)> hook) { start_hook_ = std::move(hook); }

  // Whether the runner claims CanReattach() (as the cluster runners do); false by default, as
  // the local runner. Reattach() then behaves as Start(), scripted alike, but is recorded in
  // reattaches() instead of starts().
  void SetCanReattach(bool can) { can_reattach_ = can; }

  // Runner.
  absl::Status Start(const AttemptSpec& spec, AttemptCallbacks callbacks) override;
  bool CanReattach() const override { return can_reattach_; }
  absl::Status Reattach(const AttemptSpec& spec, AttemptCallbacks callbacks) override;
  // A held attempt ends Failed with `message` (exit code -1), through a posted handler, unless
  // its script says ignore_cancel. An
  // attempt that is not held has its end already on its way and counts as finished: like an
  // unknown one, it is recorded and ignored.
  void Cancel(const std::string& external_name, const std::string& message) override;
  void KillAll() override;

  // Ends a held attempt with its scripted outcome (minus `hold`), or with `result`: on_finished
  // is posted. False if `external_name` is not a held, running attempt.
  bool Release(const std::string& external_name);
  bool Release(const std::string& external_name, const engine::AttemptResult& result);
  // Releases the held attempt of the node `node` names (full name or dotted suffix), if exactly
  // one is held. False otherwise.
  bool ReleaseNode(const std::string& node);

  // --- what happened --------------------------------------------------------------------------
  const std::vector<StartRecord>& starts() const { return starts_; }
  const std::vector<StartRecord>& reattaches() const { return reattaches_; }
  const std::vector<CancelRecord>& cancels() const { return cancels_; }
  int kill_alls() const { return kill_alls_; }
  // Starts of the node(s) `node` names, in order.
  std::vector<StartRecord> StartsOf(const std::string& node) const;
  bool Started(const std::string& node) const { return !StartsOf(node).empty(); }
  // External names of attempts started and not yet finished (on_finished not delivered), sorted.
  std::vector<std::string> Running() const;
  // Whether an attempt of the node is running and held.
  bool Held(const std::string& node) const;
  // The most attempts ever running at once.
  int max_running() const { return max_running_; }
  // on_finished calls delivered so far.
  int finished() const { return finished_; }

  // Whether `node_name` is `key` or ends with "." + key.
  static bool NameMatches(const std::string& node_name, const std::string& key);

 private:
  absl::Status Begin(const AttemptSpec& spec, AttemptCallbacks callbacks);

  struct Attempt {
    AttemptSpec spec;
    AttemptCallbacks callbacks;
    FakeAttempt outcome;
    bool held = false;  // running until Release() or Cancel(); once false, its end is posted
  };

  const FakeAttempt& Lookup(const AttemptSpec& spec) const;
  // Whether `attempt` is still the running attempt under its name (not finished, not killed).
  bool Current(const Attempt& attempt) const;
  // Posts the end of `attempt` with `result`.
  void Finish(const std::shared_ptr<Attempt>& attempt, engine::AttemptResult result);

  boost::asio::io_context& io_;
  // Cleared on destruction: handlers posted before then do nothing.
  std::shared_ptr<bool> alive_;
  std::map<std::pair<std::string, int>, FakeAttempt> scripts_;  // (key, attempt)
  FakeAttempt default_;
  std::function<void(const AttemptSpec&)> start_hook_;
  // Running attempts by external name; an attempt is removed when its on_finished is delivered
  // or KillAll() drops it.
  std::map<std::string, std::shared_ptr<Attempt>> attempts_;
  std::vector<StartRecord> starts_;
  std::vector<StartRecord> reattaches_;
  bool can_reattach_ = false;
  std::vector<CancelRecord> cancels_;
  int kill_alls_ = 0;
  int max_running_ = 0;
  int finished_ = 0;
};

}  // namespace dagd::runners::testing

#endif  // DAGD_TESTS_RUNNERS_FAKE_RUNNER_H_
