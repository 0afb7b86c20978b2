#include "core/metrics.hpp"

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <stdexcept>

namespace vtunnel::metrics {

namespace {

// Go's strconv 'g' style, which Prometheus parses: shortest round-trip text, and the special
// values spelled as the format wants them.
std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

}  // namespace

Histogram::Histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds.begin(), upper_bounds.end()), counts_(upper_bounds.size() + 1, 0) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    }
  }
}

void Histogram::observe(double v) noexcept {
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  ++count_;
  sum_ += v;
}

std::uint64_t Histogram::cumulative_count(std::size_t bucket) const noexcept {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i <= bucket && i < counts_.size(); ++i) n += counts_[i];
  return n;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

void TextWriter::header(std::string_view name, std::string_view help, Type type) {
  const char* type_name = type == Type::counter ? "counter" : type == Type::gauge ? "gauge" : "histogram";
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name,
                 type_name);
}

void TextWriter::sample_start(std::string_view name, std::span<const Label> labels) {
  out_ += name;
  if (labels.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [label, value] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += label;
    out_ += "=\"";
    out_ += escape_label_value(value);
    out_ += '"';
  }
  out_ += '}';
}

void TextWriter::sample(std::string_view name, std::span<const Label> labels, std::uint64_t value) {
  sample_start(name, labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void TextWriter::sample(std::string_view name, std::span<const Label> labels, std::int64_t value) {
  sample_start(name, labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void TextWriter::sample(std::string_view name, std::span<const Label> labels, double value) {
  sample_start(name, labels);
  out_ += ' ';
  out_ += format_double(value);
  out_ += '\n';
}

void TextWriter::counter(std::string_view name, std::string_view help, const Counter& c) {
  header(name, help, Type::counter);
  sample(name, {}, c.value());
}

void TextWriter::gauge(std::string_view name, std::string_view help, std::int64_t value) {
  header(name, help, Type::gauge);
  sample(name, {}, value);
}

void TextWriter::histogram(std::string_view name, std::string_view help, const Histogram& h) {
  header(name, help, Type::histogram);
  const std::string bucket = std::string(name) + "_bucket";
  const auto bounds = h.upper_bounds();
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    const std::string le = i < bounds.size() ? format_double(bounds[i]) : "+Inf";
    const Label labels[] = {{"le", le}};
    sample(bucket, labels, h.cumulative_count(i));
  }
  sample(std::string(name) + "_sum", {}, h.sum());
  sample(std::string(name) + "_count", {}, h.count());
}

}  // namespace vtunnel::metrics
