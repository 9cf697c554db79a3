// Helpers of the RunState tests: workflows built by hand and a Driver that plays the runner.
#ifndef DAGD_TESTS_ENGINE_RUN_STATE_DRIVER_H_
#define DAGD_TESTS_ENGINE_RUN_STATE_DRIVER_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/run_state.h"

namespace dagd::engine::test {

// ---- building workflows by hand -----------------------------------------------------------

inline Parameter Param(const std::string& name, std::optional<std::string> value = std::nullopt) {
  Parameter p;
  p.name = name;
  p.value = std::move(value);
  return p;
}

// A container template that echoes its inputs: `echo {{inputs.parameters.<p>}}…`.
inline Template Leaf(const std::string& name, std::vector<std::string> inputs = {}) {
  Template t;
  t.name = name;
  t.type = TemplateType::kContainer;
  t.container.emplace();
  t.container->image = "busybox";
  t.container->command = {"echo"};
  for (const std::string& input : inputs) {
    t.inputs.parameters.push_back(Param(input));
    t.container->args.push_back("{{inputs.parameters." + input + "}}");
  }
  return t;
}

inline DagTask Task(const std::string& name, const std::string& tmpl,
                    const std::string& depends = "",
                    std::vector<std::pair<std::string, std::string>> arguments = {}) {
  DagTask task;
  task.name = name;
  task.template_name = tmpl;
  task.depends = depends;
  for (auto& [key, value] : arguments) task.arguments.parameters.push_back(Param(key, value));
  return task;
}

inline Template Dag(const std::string& name, std::vector<DagTask> tasks) {
  Template t;
  t.name = name;
  t.type = TemplateType::kDag;
  t.dag.emplace();
  t.dag->tasks = std::move(tasks);
  return t;
}

inline Template Steps(const std::string& name, std::vector<std::vector<DagTask>> groups) {
  Template t;
  t.name = name;
  t.type = TemplateType::kSteps;
  t.steps.emplace();
  t.steps->groups = std::move(groups);
  return t;
}

inline std::shared_ptr<const Workflow> MakeWorkflow(
    std::vector<Template> templates, std::optional<int64_t> parallelism = std::nullopt) {
  auto wf = std::make_shared<Workflow>();
  wf->name = "wf";
  wf->entrypoint = templates.front().name;
  wf->templates = std::move(templates);
  wf->parallelism = parallelism;
  return wf;
}

inline AttemptResult Ok(std::optional<std::string> result = std::nullopt,
                        std::map<std::string, std::string> parameters = {}) {
  AttemptResult r;
  r.phase = NodePhase::kSucceeded;
  r.exit_code = 0;
  r.result = std::move(result);
  r.parameters = std::move(parameters);
  return r;
}

inline AttemptResult Fail(const std::string& message = "exit code 1") {
  AttemptResult r;
  r.phase = NodePhase::kFailed;
  r.exit_code = 1;
  r.message = message;
  return r;
}

// ---- driving a run ------------------------------------------------------------------------

// Plays the runner: every attempt Advance() returns finishes at once with the result the script
// gives it (by node display name, one entry per attempt, Ok() once the entries run out, or
// `fallback` if set). When nothing runs, the clock jumps to NextWakeup().
class Driver {
 public:
  explicit Driver(RunState* state, int64_t now_ms = 1000) : state_(state), now_ms_(now_ms) {}

  void Script(const std::string& display_name, std::vector<AttemptResult> results) {
    for (AttemptResult& r : results) script_[display_name].push_back(std::move(r));
  }
  std::function<AttemptResult(const DispatchRequest&)> fallback;

  // Advances once and returns the names dispatched, without finishing them.
  std::vector<std::string> Advance() {
    std::vector<std::string> names;
    for (DispatchRequest& request : state_->Advance(now_ms_)) {
      names.push_back(request.node_name);
      requests_.push_back(std::move(request));
    }
    return names;
  }

  // Finishes the running attempt of `name` with its scripted result.
  void Finish(std::string name) {
    auto it = std::find_if(requests_.begin(), requests_.end(),
                           [&](const DispatchRequest& r) { return r.node_name == name; });
    ASSERT_NE(it, requests_.end()) << name << " is not running";
    DispatchRequest request = std::move(*it);
    requests_.erase(it);
    const std::string& display = state_->nodes().at(name).display_name;
    AttemptResult result = Ok();
    auto scripted = script_.find(display);
    if (scripted != script_.end() && !scripted->second.empty()) {
      result = scripted->second.front();
      scripted->second.pop_front();
    } else if (fallback) {
      result = fallback(request);
    }
    ASSERT_TRUE(state_->OnAttemptFinished(name, request.attempt, result, now_ms_));
  }

  // Runs to the end; returns the dispatched node names of every Advance that dispatched any.
  std::vector<std::vector<std::string>> Run() {
    std::vector<std::vector<std::string>> batches;
    for (int guard = 0; guard < 1000 && !state_->Done(); ++guard) {
      std::vector<std::string> batch = Advance();
      if (!batch.empty()) batches.push_back(batch);
      if (requests_.empty()) {
        std::optional<int64_t> wakeup = state_->NextWakeup();
        if (!wakeup) break;
        now_ms_ = std::max(now_ms_, *wakeup);
        continue;
      }
      now_ms_ += 10;
      while (!requests_.empty()) Finish(std::string(requests_.front().node_name));
    }
    return batches;
  }

  const std::vector<DispatchRequest>& running() const { return requests_; }
  const DispatchRequest* Request(const std::string& name) const {
    for (const DispatchRequest& r : requests_) {
      if (r.node_name == name) return &r;
    }
    return nullptr;
  }
  int64_t& now() { return now_ms_; }

 private:
  RunState* state_;
  int64_t now_ms_;
  std::map<std::string, std::deque<AttemptResult>> script_;
  std::vector<DispatchRequest> requests_;
};

inline RunState MustCreate(std::shared_ptr<const Workflow> wf,
                           std::map<std::string, std::string> params = {}, int64_t now_ms = 1000) {
  absl::StatusOr<RunState> state =
      RunState::Create(std::move(wf), std::move(params), "run", now_ms);
  EXPECT_TRUE(state.ok()) << state.status();
  return *std::move(state);
}

inline const NodeState& NodeOf(const RunState& state, const std::string& name) {
  static const NodeState kMissing;
  auto it = state.nodes().find(name);
  EXPECT_NE(it, state.nodes().end()) << "no node " << name;
  return it == state.nodes().end() ? kMissing : it->second;
}

inline std::shared_ptr<const Workflow> Diamond() {
  return MakeWorkflow({Dag("main", {Task("A", "echo"), Task("B", "echo", "A"),
                                    Task("C", "echo", "A"), Task("D", "echo", "B && C")}),
                       Leaf("echo")});
}

}  // namespace dagd::engine::test

#endif  // DAGD_TESTS_ENGINE_RUN_STATE_DRIVER_H_
