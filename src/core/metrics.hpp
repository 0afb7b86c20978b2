#pragma once
// Metric primitives and the Prometheus text exposition writer (format 0.0.4).
//
//   metrics::Counter connections;             // on the data path: connections.inc();
//   std::string out;
//   metrics::TextWriter w(out);
//   w.counter("vtunnel_tunnel_connections_total", "Tunnel connections carried.", connections);
//
// A Loop is single-threaded and scrapes run on the same loop, so the primitives are plain
// integers: an update is one add, no atomic, no lock, no allocation. Histogram bucket bounds
// are fixed at construction; observe() is a short linear scan.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vtunnel::metrics {

// What GET /metrics answers with.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_ += n; }
  std::uint64_t value() const noexcept { return value_; }

 private:
  std::uint64_t value_ = 0;
};

class Gauge {
 public:
  void inc(std::int64_t n = 1) noexcept { value_ += n; }
  void dec(std::int64_t n = 1) noexcept { value_ -= n; }
  void set(std::int64_t v) noexcept { value_ = v; }
  std::int64_t value() const noexcept { return value_; }

 private:
  std::int64_t value_ = 0;
};

// Increments a gauge for the lifetime of a scope (an open connection, a session).
class GaugeGuard {
 public:
  explicit GaugeGuard(Gauge& g) noexcept : gauge_(&g) { gauge_->inc(); }
  GaugeGuard(GaugeGuard&& o) noexcept : gauge_(std::exchange(o.gauge_, nullptr)) {}
  GaugeGuard(const GaugeGuard&) = delete;
  GaugeGuard& operator=(const GaugeGuard&) = delete;
  GaugeGuard& operator=(GaugeGuard&&) = delete;
  ~GaugeGuard() {
    if (gauge_) gauge_->dec();
  }

 private:
  Gauge* gauge_;
};

class Histogram {
 public:
  // `upper_bounds` strictly increasing and finite; the +Inf bucket is implicit.
  explicit Histogram(std::span<const double> upper_bounds);
  Histogram(std::initializer_list<double> upper_bounds)
      : Histogram(std::span<const double>(upper_bounds.begin(), upper_bounds.size())) {}

  void observe(double v) noexcept;

  std::span<const double> upper_bounds() const noexcept { return bounds_; }
  // Observations <= upper_bounds()[i], cumulative as the exposition needs it.
  std::uint64_t cumulative_count(std::size_t bucket) const noexcept;
  std::uint64_t count() const noexcept { return count_; }
  double sum() const noexcept { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative (last one: +Inf)
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// Prometheus' default buckets, in seconds: right for handshakes (ms .. s).
inline constexpr std::array<double, 11> kDefaultSecondsBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                   0.5,   1,    2.5,   5,    10};

using Label = std::pair<std::string_view, std::string_view>;  // name, value (any bytes)

// Escaping as the format wants it. Label values: backslash, double quote and line feed.
// HELP text: backslash and line feed.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);

// Appends families to `out`. Call header() once per metric name, then its samples; the
// counter()/gauge()/histogram() shorthands do both for an unlabelled metric. Names are ours
// (compile-time text) and are not checked; label values are escaped.
class TextWriter {
 public:
  enum class Type { counter, gauge, histogram };
  explicit TextWriter(std::string& out) noexcept : out_(out) {}

  void header(std::string_view name, std::string_view help, Type type);
  void sample(std::string_view name, std::span<const Label> labels, std::uint64_t value);
  void sample(std::string_view name, std::span<const Label> labels, std::int64_t value);
  void sample(std::string_view name, std::span<const Label> labels, double value);

  void counter(std::string_view name, std::string_view help, const Counter& c);
  void gauge(std::string_view name, std::string_view help, std::int64_t value);
  void histogram(std::string_view name, std::string_view help, const Histogram& h);

 private:
  void sample_start(std::string_view name, std::span<const Label> labels);

  std::string& out_;
};

}  // namespace vtunnel::metrics
