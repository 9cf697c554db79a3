#include "tests/runners/fake_runner.h"

#include <algorithm>
#include <boost/asio/post.hpp>

#include "absl/strings/str_cat.h"

namespace dagd::runners::testing {

namespace {

engine::AttemptResult ResultOf(const FakeAttempt& outcome) {
  engine::AttemptResult result;
  result.phase = outcome.phase;
  result.exit_code = outcome.exit_code;
  result.message = outcome.message;
  result.result = outcome.result;
  result.parameters = outcome.parameters;
  return result;
}

}  // namespace

FakeAttempt FakeAttempt::Succeed(std::optional<std::string> result) {
  FakeAttempt a;
  a.result = std::move(result);
  return a;
}

FakeAttempt FakeAttempt::Fail(int exit_code, std::string message) {
  FakeAttempt a;
  a.phase = engine::NodePhase::kFailed;
  a.exit_code = exit_code;
  a.message = std::move(message);
  return a;
}

FakeAttempt FakeAttempt::Error(std::string message) {
  FakeAttempt a;
  a.phase = engine::NodePhase::kError;
  a.exit_code = -1;
  a.message = std::move(message);
  return a;
}

FakeAttempt FakeAttempt::Hold() {
  FakeAttempt a;
  a.hold = true;
  return a;
}

FakeRunner::FakeRunner(boost::asio::io_context& io)
    : io_(io), alive_(std::make_shared<bool>(true)) {}

FakeRunner::~FakeRunner() { *alive_ = false; }

bool FakeRunner::NameMatches(const std::string& node_name, const std::string& key) {
  if (key.empty()) return false;
  if (node_name == key) return true;
  return node_name.size() > key.size() &&
         node_name.compare(node_name.size() - key.size(), key.size(), key) == 0 &&
         node_name[node_name.size() - key.size() - 1] == '.';
}

void FakeRunner::Script(const std::string& node, int attempt, FakeAttempt outcome) {
  scripts_[{node, attempt}] = std::move(outcome);
}

const FakeAttempt& FakeRunner::Lookup(const AttemptSpec& spec) const {
  // Rank: full name beats suffix, a longer suffix beats a shorter one, an exact attempt beats 0.
  const FakeAttempt* best = nullptr;
  std::pair<size_t, int> best_rank{0, -1};
  for (const auto& [key, outcome] : scripts_) {
    const auto& [name, attempt] = key;
    if (attempt != 0 && attempt != spec.attempt) continue;
    if (!NameMatches(spec.node_name, name)) continue;
    std::pair<size_t, int> rank{name.size(), attempt != 0 ? 1 : 0};
    if (best == nullptr || rank > best_rank) {
      best = &outcome;
      best_rank = rank;
    }
  }
  return best != nullptr ? *best : default_;
}

absl::Status FakeRunner::Start(const AttemptSpec& spec, AttemptCallbacks callbacks) {
  starts_.push_back({spec, std::chrono::steady_clock::now()});
  return Begin(spec, std::move(callbacks));
}

absl::Status FakeRunner::Reattach(const AttemptSpec& spec, AttemptCallbacks callbacks) {
  if (!can_reattach_) return Runner::Reattach(spec, std::move(callbacks));
  reattaches_.push_back({spec, std::chrono::steady_clock::now()});
  return Begin(spec, std::move(callbacks));
}

absl::Status FakeRunner::Begin(const AttemptSpec& spec, AttemptCallbacks callbacks) {
  const FakeAttempt& outcome = Lookup(spec);
  if (!outcome.start_error.ok()) return outcome.start_error;
  if (attempts_.count(spec.external_name) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("attempt ", spec.external_name, " is already running"));
  }
  auto attempt = std::make_shared<Attempt>();
  attempt->spec = spec;
  attempt->callbacks = std::move(callbacks);
  attempt->outcome = outcome;
  attempt->held = outcome.hold;
  attempts_[spec.external_name] = attempt;
  max_running_ = std::max(max_running_, static_cast<int>(attempts_.size()));
  if (start_hook_) start_hook_(spec);
  for (const auto& [stream, data] : attempt->outcome.logs) {
    boost::asio::post(io_, [this, alive = alive_, attempt, stream = stream, data = data] {
      if (*alive && Current(*attempt) && attempt->callbacks.on_log) {
        attempt->callbacks.on_log(stream, data);
      }
    });
  }
  for (const std::string& line : attempt->outcome.events) {
    boost::asio::post(io_, [this, alive = alive_, attempt, line = line] {
      if (*alive && Current(*attempt) && attempt->callbacks.on_event) {
        attempt->callbacks.on_event(line);
      }
    });
  }
  if (!attempt->held) Finish(attempt, ResultOf(attempt->outcome));
  return absl::OkStatus();
}

bool FakeRunner::Current(const Attempt& attempt) const {
  auto found = attempts_.find(attempt.spec.external_name);
  return found != attempts_.end() && found->second.get() == &attempt;
}

void FakeRunner::Finish(const std::shared_ptr<Attempt>& attempt, engine::AttemptResult result) {
  attempt->held = false;
  boost::asio::post(io_, [this, alive = alive_, attempt, result = std::move(result)]() mutable {
    if (!*alive || !Current(*attempt)) return;
    attempts_.erase(attempt->spec.external_name);
    ++finished_;
    // Moved out first: the callback may start a new attempt under another name.
    auto on_finished = std::move(attempt->callbacks.on_finished);
    if (on_finished) on_finished(std::move(result));
  });
}

void FakeRunner::Cancel(const std::string& external_name, const std::string& message) {
  auto it = attempts_.find(external_name);
  const bool running =
      it != attempts_.end() && it->second->held && !it->second->outcome.ignore_cancel;
  cancels_.push_back({external_name, message, it != attempts_.end()});
  // An attempt whose end is already on its way is finished as far as Cancel is concerned.
  if (!running) return;
  engine::AttemptResult result;
  result.phase = engine::NodePhase::kFailed;
  result.exit_code = -1;
  result.message = message;
  Finish(it->second, std::move(result));
}

void FakeRunner::KillAll() {
  ++kill_alls_;
  attempts_.clear();
}

bool FakeRunner::Release(const std::string& external_name) {
  auto it = attempts_.find(external_name);
  if (it == attempts_.end() || !it->second->held) return false;
  Finish(it->second, ResultOf(it->second->outcome));
  return true;
}

bool FakeRunner::Release(const std::string& external_name, const engine::AttemptResult& result) {
  auto it = attempts_.find(external_name);
  if (it == attempts_.end() || !it->second->held) return false;
  Finish(it->second, result);
  return true;
}

bool FakeRunner::ReleaseNode(const std::string& node) {
  std::string found;
  for (const auto& [name, attempt] : attempts_) {
    if (!attempt->held || !NameMatches(attempt->spec.node_name, node)) continue;
    if (!found.empty()) return false;  // ambiguous
    found = name;
  }
  return !found.empty() && Release(found);
}

std::vector<FakeRunner::StartRecord> FakeRunner::StartsOf(const std::string& node) const {
  std::vector<StartRecord> out;
  for (const StartRecord& s : starts_) {
    if (NameMatches(s.spec.node_name, node)) out.push_back(s);
  }
  return out;
}

std::vector<std::string> FakeRunner::Running() const {
  std::vector<std::string> names;
  for (const auto& [name, attempt] : attempts_) names.push_back(name);
  return names;  // std::map: already sorted
}

bool FakeRunner::Held(const std::string& node) const {
  for (const auto& [name, attempt] : attempts_) {
    if (attempt->held && NameMatches(attempt->spec.node_name, node)) return true;
  }
  return false;
}

}  // namespace dagd::runners::testing
