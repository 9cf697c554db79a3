#include "metrics/registry.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <type_traits>

namespace dagd::metrics {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "dagd metrics: " << what << "\n";
  std::abort();
}

bool ValidName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

// Prometheus' float spelling: integers without a fraction, +Inf/-Inf/NaN by name.
std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // The shortest spelling that reads back as the same double: 0.1, not 0.10000000000000001.
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, ec == std::errc() ? end : buf);
}

// The help text's escaping: backslash and newline.
std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// {a="x",b="y"} plus an optional extra label (le for buckets); "" when there are none.
std::string LabelSet(const std::vector<std::string>& names, const std::vector<std::string>& values,
                     const char* extra_name = nullptr, const std::string& extra_value = "") {
  if (names.empty() && extra_name == nullptr) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ",";
    out += names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (extra_name != nullptr) {
    if (!names.empty()) out += ",";
    out += std::string(extra_name) + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void Counter::Increment(double by) {
  if (!(by >= 0)) return;  // also NaN
  value_.fetch_add(by, std::memory_order_relaxed);
}

void Counter::CatchUp(double total) {
  double current = value_.load(std::memory_order_relaxed);
  while (total > current && !value_.compare_exchange_weak(current, total)) {
  }
}

void Gauge::Add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  size_t i = 0;
  while (i < bounds_->size() && value > (*bounds_)[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // Read from the buckets so that +Inf and _count agree within one scrape.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& DurationBuckets() {
  static const std::vector<double> kBounds = {0.001, 0.01, 0.1, 0.5, 1,   2.5,  5,    10,
                                              30,    60,   120, 300, 600, 1200, 1800, 3600};
  return kBounds;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                              0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                              1,      2.5,     5,      10};
  return kBounds;
}

template <typename Series>
Series& Family<Series>::Labels(std::initializer_list<std::string_view> values) {
  return Find(std::vector<std::string>(values.begin(), values.end()));
}

template <typename Series>
Series& Family<Series>::Labels(const std::vector<std::string>& values) {
  return Find(values);
}

template <typename Series>
Series& Family<Series>::Find(std::vector<std::string> values) {
  if (values.size() != label_names_.size()) {
    Die(name_ + ": " + std::to_string(values.size()) + " label value(s) for " +
        std::to_string(label_names_.size()) + " label name(s)");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(values);
  if (it != series_.end()) return *it->second;
  if (series_.size() >= max_series_) {
    std::fill(values.begin(), values.end(), std::string(kOverflowLabel));
    it = series_.find(values);
    if (it != series_.end()) return *it->second;
  }
  return *series_.emplace(std::move(values), NewSeries()).first->second;
}

template <typename Series>
std::unique_ptr<Series> Family<Series>::NewSeries() const {
  return std::make_unique<Series>();
}

template <>
std::unique_ptr<Histogram> Family<Histogram>::NewSeries() const {
  return std::make_unique<Histogram>(&bounds_);
}

template <typename Series>
void Family<Series>::Render(std::string& out) const {
  static constexpr const char* kType = std::is_same_v<Series, Counter> ? "counter" : "gauge";
  out += "# HELP " + name_ + " " + EscapeHelp(help_) + "\n";
  out += "# TYPE " + name_ + " " + kType + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, series] : series_) {
    out += name_ + LabelSet(label_names_, values) + " " + FormatValue(series->value()) + "\n";
  }
}

template <>
void Family<Histogram>::Render(std::string& out) const {
  out += "# HELP " + name_ + " " + EscapeHelp(help_) + "\n";
  out += "# TYPE " + name_ + " histogram\n";
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, series] : series_) {
    const Histogram::Snapshot s = series->Read();
    for (size_t i = 0; i < s.cumulative.size(); ++i) {
      const std::string le = i < bounds_.size() ? FormatValue(bounds_[i]) : "+Inf";
      out += name_ + "_bucket" + LabelSet(label_names_, values, "le", le) + " " +
             FormatValue(static_cast<double>(s.cumulative[i])) + "\n";
    }
    const std::string labels = LabelSet(label_names_, values);
    out += name_ + "_sum" + labels + " " + FormatValue(s.sum) + "\n";
    out += name_ + "_count" + labels + " " + FormatValue(static_cast<double>(s.count)) + "\n";
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

template <typename F>
F* Registry::Adopt(F* family) {
  std::unique_ptr<F> owned(family);
  if (!ValidName(family->name())) Die("invalid metric name \"" + family->name() + "\"");
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& existing : families_) {
    if (existing->name() == family->name()) {
      Die("metric \"" + family->name() + "\" declared twice");
    }
  }
  families_.push_back(std::move(owned));
  return family;
}

CounterFamily* Registry::AddCounter(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names, size_t max_series) {
  return Adopt(new CounterFamily(name, help, std::move(label_names), max_series));
}

GaugeFamily* Registry::AddGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, size_t max_series) {
  return Adopt(new GaugeFamily(name, help, std::move(label_names), max_series));
}

HistogramFamily* Registry::AddHistogram(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds, size_t max_series) {
  for (size_t i = 1; i < bounds.size(); ++i) {
    if (!(bounds[i - 1] < bounds[i])) Die(name + ": bucket bounds must ascend");
  }
  for (const auto& label : label_names) {
    if (label == "le") Die(name + ": a histogram cannot have a label named le");
  }
  return Adopt(
      new HistogramFamily(name, help, std::move(label_names), max_series, std::move(bounds)));
}

void Registry::OnCollect(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back(std::move(hook));
}

std::string Registry::Render() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hooks = hooks_;
  }
  for (const auto& hook : hooks) hook();
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& family : families_) family->Render(out);
  return out;
}

}  // namespace dagd::metrics
