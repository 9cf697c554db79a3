// Metrics: counters, gauges and histograms with bounded labels, and their Prometheus text
// exposition (format 0.0.4). Debian has no Prometheus client library for C++, so this is ours:
// small on purpose (docs/metrics.md lists what dagd exports).
//
// Ownership and threads: a Registry owns its families; a family owns its series. Families are
// created at start-up (AddCounter/AddGauge/AddHistogram) and live as long as the registry, so
// modules keep plain pointers to them. Every method is thread-safe: series are updated with
// atomics, and a family's series map is guarded by a mutex taken when a label combination is
// looked up. Render() may run concurrently with updates; each sample it prints is a value the
// series had at some point during the call.
//
// Bounded labels: a family holds at most `max_series` label combinations. Once full, a new
// combination maps to one overflow series whose every label value is "_other" — a run id that
// slipped into a label can never grow a family without bound.
#ifndef DAGD_METRICS_REGISTRY_H_
#define DAGD_METRICS_REGISTRY_H_

#include <atomic>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace dagd::metrics {

// A value that only goes up (resets with the process).
class Counter {
 public:
  void Increment(double by = 1);  // `by` >= 0; negative values are ignored
  // For a counter kept by someone else (the kernel's CPU time): takes `total` if it is higher.
  void CatchUp(double total);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double by);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into cumulative buckets with upper bounds `bounds` (ascending; +Inf is
// implicit), plus their sum and count.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double>* bounds_;                 // owned by the family
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Bucket bounds, in seconds, for durations from a millisecond to an hour.
const std::vector<double>& DurationBuckets();
// Bucket bounds, in seconds, for fast operations (gRPC calls, commits): 100 µs to 10 s.
const std::vector<double>& LatencyBuckets();

// What the registry needs of a family: its name, and its samples in the text format.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  virtual const std::string& name() const = 0;
  // Appends # HELP, # TYPE and one line per sample.
  virtual void Render(std::string& out) const = 0;
};

// All series of one metric name, by label values (in the order of the family's label names).
template <typename Series>
class Family : public FamilyBase {
 public:
  // The series for these label values, created on first use. The number of values must equal
  // the number of label names (a mismatch is a programmer error and aborts).
  Series& Labels(std::initializer_list<std::string_view> values);
  Series& Labels(const std::vector<std::string>& values);
  // Without labels (a family declared with no label names).
  Series& Get() { return Labels({}); }

  const std::string& name() const override { return name_; }
  void Render(std::string& out) const override;

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         size_t max_series, std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        max_series_(max_series),
        bounds_(std::move(bounds)) {}
  Series& Find(std::vector<std::string> values);
  std::unique_ptr<Series> NewSeries() const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const size_t max_series_;
  const std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Series>> series_;  // guarded by mu_
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Registry {
 public:
  static constexpr size_t kDefaultMaxSeries = 1000;

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Declares a family. Names follow Prometheus' rules ([a-zA-Z_:][a-zA-Z0-9_:]*); counters end
  // in _total. Declaring a name twice is a programmer error and aborts.
  CounterFamily* AddCounter(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names = {},
                            size_t max_series = kDefaultMaxSeries);
  GaugeFamily* AddGauge(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {},
                        size_t max_series = kDefaultMaxSeries);
  HistogramFamily* AddHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, std::vector<double> bounds,
                                size_t max_series = kDefaultMaxSeries);

  // A hook run at the start of every Render(), on the rendering thread: for gauges whose value
  // is read rather than tracked (process figures, database size, scheduler state). Hooks must
  // not call Render().
  void OnCollect(std::function<void()> hook);

  // Runs the hooks, then prints every family in declaration order.
  std::string Render() const;

 private:
  // Takes ownership of `family` after checking its name is valid and new.
  template <typename F>
  F* Adopt(F* family);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_;  // guarded by mu_
  std::vector<std::function<void()>> hooks_;           // guarded by mu_
};

// The text format's escaping of a label value: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view value);

// The value of "_other", the label of a family's overflow series.
inline constexpr std::string_view kOverflowLabel = "_other";

}  // namespace dagd::metrics

#endif  // DAGD_METRICS_REGISTRY_H_
