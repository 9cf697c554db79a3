#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace dagd::metrics {
namespace {

TEST(RegistryTest, RendersCountersAndGaugesInTheTextFormat) {
  Registry registry;
  CounterFamily* runs =
      registry.AddCounter("dagd_runs_started_total", "Runs started.", {"workflow"});
  GaugeFamily* active = registry.AddGauge("dagd_runs_active", "Runs in progress.");
  runs->Labels({"diamond"}).Increment();
  runs->Labels({"diamond"}).Increment(2);
  runs->Labels({"etl"}).Increment();
  active->Get().Set(3);
  active->Get().Add(-1);

  EXPECT_EQ(registry.Render(),
            "# HELP dagd_runs_started_total Runs started.\n"
            "# TYPE dagd_runs_started_total counter\n"
            "dagd_runs_started_total{workflow=\"diamond\"} 3\n"
            "dagd_runs_started_total{workflow=\"etl\"} 1\n"
            "# HELP dagd_runs_active Runs in progress.\n"
            "# TYPE dagd_runs_active gauge\n"
            "dagd_runs_active 2\n");
}

TEST(RegistryTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry registry;
  HistogramFamily* latency =
      registry.AddHistogram("dagd_x_seconds", "X.", {"method"}, {0.1, 1, 10});
  Histogram& h = latency->Labels({"/a"});
  h.Observe(0.05);
  h.Observe(0.1);  // on the bound: counted in le="0.1"
  h.Observe(2);
  h.Observe(100);

  EXPECT_EQ(registry.Render(),
            "# HELP dagd_x_seconds X.\n"
            "# TYPE dagd_x_seconds histogram\n"
            "dagd_x_seconds_bucket{method=\"/a\",le=\"0.1\"} 2\n"
            "dagd_x_seconds_bucket{method=\"/a\",le=\"1\"} 2\n"
            "dagd_x_seconds_bucket{method=\"/a\",le=\"10\"} 3\n"
            "dagd_x_seconds_bucket{method=\"/a\",le=\"+Inf\"} 4\n"
            "dagd_x_seconds_sum{method=\"/a\"} 102.15\n"
            "dagd_x_seconds_count{method=\"/a\"} 4\n");
}

TEST(RegistryTest, LabelValuesAndHelpAreEscaped) {
  Registry registry;
  registry.AddGauge("g", "Line one\nback\\slash", {"v"})->Labels({"a\"b\\c\nd"}).Set(1);
  EXPECT_EQ(registry.Render(),
            "# HELP g Line one\\nback\\\\slash\n"
            "# TYPE g gauge\n"
            "g{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(RegistryTest, AFullFamilyFoldsNewCombinationsIntoTheOverflowSeries) {
  Registry registry;
  CounterFamily* c = registry.AddCounter("c_total", "C.", {"a", "b"}, /*max_series=*/2);
  c->Labels({"1", "x"}).Increment();
  c->Labels({"2", "x"}).Increment();
  c->Labels({"3", "x"}).Increment();  // the third combination: overflow
  c->Labels({"4", "y"}).Increment(5);
  c->Labels({"1", "x"}).Increment();  // existing combinations keep their series

  EXPECT_EQ(registry.Render(),
            "# HELP c_total C.\n"
            "# TYPE c_total counter\n"
            "c_total{a=\"1\",b=\"x\"} 2\n"
            "c_total{a=\"2\",b=\"x\"} 1\n"
            "c_total{a=\"_other\",b=\"_other\"} 6\n");
}

TEST(RegistryTest, CollectHooksRunBeforeEachRender) {
  Registry registry;
  Gauge* g = &registry.AddGauge("g", "G.")->Get();
  int calls = 0;
  registry.OnCollect([&] { g->Set(++calls * 10); });
  EXPECT_NE(registry.Render().find("\ng 10\n"), std::string::npos);
  EXPECT_NE(registry.Render().find("\ng 20\n"), std::string::npos);
}

TEST(RegistryTest, CountersNeverGoDown) {
  Registry registry;
  Counter& c = registry.AddCounter("c_total", "C.")->Get();
  c.Increment(5);
  c.Increment(-3);
  EXPECT_EQ(c.value(), 5);
  c.CatchUp(4);
  EXPECT_EQ(c.value(), 5);
  c.CatchUp(7.5);
  EXPECT_EQ(c.value(), 7.5);
}

TEST(RegistryTest, ConcurrentUpdatesAreAllCounted) {
  Registry registry;
  CounterFamily* c = registry.AddCounter("c_total", "C.", {"t"});
  HistogramFamily* h = registry.AddHistogram("h", "H.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        c->Labels({t % 2 ? "odd" : "even"}).Increment();
        h->Get().Observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->Labels({"odd"}).value(), 20000);
  EXPECT_EQ(c->Labels({"even"}).value(), 20000);
  Histogram::Snapshot s = h->Get().Read();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(s.cumulative.front(), 40000u);
  EXPECT_DOUBLE_EQ(s.sum, 20000);
}

TEST(RegistryDeathTest, ProgrammerErrorsAbort) {
  Registry registry;
  registry.AddCounter("c_total", "C.", {"a"});
  EXPECT_DEATH(registry.AddCounter("c_total", "again"), "declared twice");
  EXPECT_DEATH(registry.AddGauge("bad-name", "x"), "invalid metric name");
  EXPECT_DEATH(registry.AddHistogram("h", "x", {"le"}, {1}), "label named le");
  EXPECT_DEATH(registry.AddHistogram("h2", "x", {}, {2, 1}), "ascend");
  CounterFamily* c = registry.AddCounter("d_total", "D.", {"a"});
  EXPECT_DEATH(c->Labels({"x", "y"}), "2 label value\\(s\\) for 1 label name");
}

}  // namespace
}  // namespace dagd::metrics
