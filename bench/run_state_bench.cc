// How fast the engine's state machine moves nodes, without I/O: one run of a DAG driven to the
// end, every attempt succeeding at once. DESIGN.md §5 aims at tens of thousands of node
// transitions per second on two cores; this measures the engine's share of that.
//
//   build/bench/run_state_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <string>

#include "engine/parser.h"
#include "engine/run_state.h"
#include "engine/validate.h"

namespace {

using dagd::engine::AttemptResult;
using dagd::engine::NodePhase;
using dagd::engine::RunState;

// A DAG of `width` independent tasks fanned into one final task.
std::string WideDag(int width) {
  std::string yaml =
      "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: wide}\n"
      "spec:\n  entrypoint: main\n  templates:\n  - name: main\n    dag:\n      tasks:\n";
  std::string all;
  for (int i = 0; i < width; ++i) {
    yaml += "      - {name: t" + std::to_string(i) + ", template: echo}\n";
    all += (i ? " && t" : "t") + std::to_string(i);
  }
  yaml += "      - {name: last, template: echo, depends: \"" + all + "\"}\n";
  yaml += "  - name: echo\n    container: {image: alpine, command: [echo, hi]}\n";
  return yaml;
}

// A chain t0 -> t1 -> … of `length` tasks.
std::string Chain(int length) {
  std::string yaml =
      "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: chain}\n"
      "spec:\n  entrypoint: main\n  templates:\n  - name: main\n    dag:\n      tasks:\n";
  for (int i = 0; i < length; ++i) {
    yaml += "      - {name: t" + std::to_string(i) + ", template: echo";
    if (i > 0) yaml += ", depends: t" + std::to_string(i - 1);
    yaml += "}\n";
  }
  yaml += "  - name: echo\n    container: {image: alpine, command: [echo, hi]}\n";
  return yaml;
}

void DriveToEnd(benchmark::State& state, const std::string& yaml) {
  auto workflow = std::make_shared<const dagd::engine::Workflow>(
      dagd::engine::ParseWorkflow(yaml, "bench.yaml").value());
  if (!dagd::engine::ValidateWorkflow(*workflow).ok()) std::abort();
  int64_t transitions = 0;
  for (auto _ : state) {
    int64_t now = 1;
    auto run = RunState::Create(workflow, {}, "bench", now).value();
    while (!run.Done()) {
      auto ready = run.Advance(++now);
      transitions += static_cast<int64_t>(run.TakeChangedNodes().size());
      for (const auto& d : ready) {
        AttemptResult ok;
        ok.phase = NodePhase::kSucceeded;
        ok.exit_code = 0;
        ok.result = "hi";
        run.OnAttemptFinished(d.node_name, d.attempt, ok, ++now);
      }
    }
    transitions += static_cast<int64_t>(run.TakeChangedNodes().size());
    benchmark::DoNotOptimize(run.phase());
  }
  state.counters["node_transitions_per_s"] =
      benchmark::Counter(static_cast<double>(transitions), benchmark::Counter::kIsRate);
}

void BM_WideDag(benchmark::State& state) { DriveToEnd(state, WideDag(state.range(0))); }
void BM_Chain(benchmark::State& state) { DriveToEnd(state, Chain(state.range(0))); }

BENCHMARK(BM_WideDag)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Chain)->Arg(10)->Arg(100)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
