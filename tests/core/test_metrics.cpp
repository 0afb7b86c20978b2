// The Prometheus text exposition writer (format 0.0.4): escaping, cumulative histogram buckets,
// and output that a strict line parser accepts.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/metrics.hpp"

using namespace vtunnel;
using metrics::Label;
using Type = metrics::TextWriter::Type;

namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
};

struct Parsed {
  std::vector<Sample> samples;
  std::map<std::string, std::string> help;  // unescaped
  std::map<std::string, std::string> type;
};

bool is_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

// A strict parser of the subset we write: fails the test on anything unexpected.
Parsed parse(const std::string& text) {
  Parsed out;
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    INFO("line: " << line);
    REQUIRE(!line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      REQUIRE(sp != std::string::npos);
      std::string h;
      for (std::size_t i = sp + 1; i < rest.size(); ++i) {
        if (rest[i] == '\\') {
          REQUIRE(i + 1 < rest.size());
          char e = rest[++i];
          REQUIRE((e == '\\' || e == 'n'));
          h += e == 'n' ? '\n' : '\\';
        } else {
          h += rest[i];
        }
      }
      REQUIRE(out.help.count(rest.substr(0, sp)) == 0);  // one HELP per family
      out.help[rest.substr(0, sp)] = h;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      REQUIRE(sp != std::string::npos);
      std::string t = rest.substr(sp + 1);
      REQUIRE((t == "counter" || t == "gauge" || t == "histogram"));
      out.type[rest.substr(0, sp)] = t;
      continue;
    }
    REQUIRE(line[0] != '#');
    Sample s;
    std::size_t i = 0;
    while (i < line.size() && is_name_char(line[i], i == 0)) ++i;
    REQUIRE(i > 0);
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (line.at(i) != '}') {
        std::size_t start = i;
        while (is_name_char(line.at(i), i == start)) ++i;
        std::string label = line.substr(start, i - start);
        REQUIRE(!label.empty());
        REQUIRE(line.at(i++) == '=');
        REQUIRE(line.at(i++) == '"');
        std::string value;
        for (;;) {
          char c = line.at(i++);
          if (c == '"') break;
          if (c == '\\') {
            char e = line.at(i++);
            REQUIRE((e == '\\' || e == '"' || e == 'n'));
            value += e == 'n' ? '\n' : e;
          } else {
            value += c;
          }
        }
        s.labels[label] = value;
        if (line.at(i) == ',') ++i;
      }
      ++i;
    }
    REQUIRE(line.at(i++) == ' ');
    std::string v = line.substr(i);
    if (v == "+Inf") {
      s.value = INFINITY;
    } else {
      std::size_t used = 0;
      s.value = std::stod(v, &used);
      REQUIRE(used == v.size());
    }
    out.samples.push_back(s);
  }
  return out;
}

const Sample* find(const Parsed& p, const std::string& name, const std::map<std::string, std::string>& labels = {}) {
  for (const auto& s : p.samples) {
    if (s.name == name && s.labels == labels) return &s;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("metrics: label values and HELP are escaped as the format says") {
  CHECK(metrics::escape_label_value(R"(a"b\c)" "\n" "d") == R"(a\"b\\c\nd)");
  CHECK(metrics::escape_label_value("plain value: ok") == "plain value: ok");
  CHECK(metrics::escape_help("back\\slash \"quote\"\nnext") == "back\\\\slash \"quote\"\\nnext");

  std::string out;
  metrics::TextWriter w(out);
  w.header("t_total", "Help with \\ and\na line feed.", Type::counter);
  const std::string hostile = "x\"} 1\nevil_metric 666\n\\";
  const Label labels[] = {{"outcome", hostile}, {"b", ""}};
  w.sample("t_total", labels, std::uint64_t{7});
  // The hostile value cannot add a line or end the label set.
  CHECK(std::count(out.begin(), out.end(), '\n') == 3);
  auto p = parse(out);
  REQUIRE(p.samples.size() == 1);
  CHECK(p.samples[0].labels.at("outcome") == hostile);
  CHECK(p.samples[0].labels.at("b").empty());
  CHECK(p.samples[0].value == 7);
  CHECK(p.help.at("t_total") == "Help with \\ and\na line feed.");
  CHECK(p.type.at("t_total") == "counter");
}

TEST_CASE("metrics: counters, gauges and exact integer values") {
  metrics::Counter c;
  c.inc();
  c.inc(41);
  metrics::Gauge g;
  g.inc(3);
  g.dec();
  {
    metrics::GaugeGuard open(g);
    CHECK(g.value() == 3);
  }
  CHECK(g.value() == 2);
  metrics::Counter big;
  big.inc(std::uint64_t{1} << 60);  // no rounding through double
  std::string out;
  metrics::TextWriter w(out);
  w.counter("a_total", "A.", c);
  w.gauge("b", "B.", g.value());
  w.gauge("neg", "Negative.", -5);
  w.counter("big_total", "Big.", big);
  CHECK(out ==
        "# HELP a_total A.\n# TYPE a_total counter\na_total 42\n"
        "# HELP b B.\n# TYPE b gauge\nb 2\n"
        "# HELP neg Negative.\n# TYPE neg gauge\nneg -5\n"
        "# HELP big_total Big.\n# TYPE big_total counter\nbig_total 1152921504606846976\n");
  auto p = parse(out);
  CHECK(p.samples.size() == 4);
}

TEST_CASE("metrics: histogram buckets are cumulative and end with +Inf == count") {
  metrics::Histogram h{0.1, 1, 10};
  for (double v : {0.05, 0.1, 0.5, 0.7, 3.0, 100.0}) h.observe(v);
  CHECK(h.count() == 6);
  CHECK(h.sum() == Approx(104.35));
  CHECK(h.cumulative_count(0) == 2);  // 0.05 and 0.1 (le is inclusive)
  CHECK(h.cumulative_count(1) == 4);
  CHECK(h.cumulative_count(2) == 5);
  CHECK(h.cumulative_count(3) == 6);

  std::string out;
  metrics::TextWriter w(out);
  w.histogram("lat_seconds", "Latency.", h);
  auto p = parse(out);
  CHECK(p.type.at("lat_seconds") == "histogram");
  REQUIRE(find(p, "lat_seconds_bucket", {{"le", "0.1"}}));
  CHECK(find(p, "lat_seconds_bucket", {{"le", "0.1"}})->value == 2);
  CHECK(find(p, "lat_seconds_bucket", {{"le", "1"}})->value == 4);
  CHECK(find(p, "lat_seconds_bucket", {{"le", "10"}})->value == 5);
  REQUIRE(find(p, "lat_seconds_bucket", {{"le", "+Inf"}}));
  CHECK(find(p, "lat_seconds_bucket", {{"le", "+Inf"}})->value == 6);
  CHECK(find(p, "lat_seconds_count")->value == 6);
  CHECK(find(p, "lat_seconds_sum")->value == Approx(104.35));
  // Buckets appear in increasing order of le and never decrease.
  double last_le = -1, last_count = 0;
  for (const auto& s : p.samples) {
    if (s.name != "lat_seconds_bucket") continue;
    double le = s.labels.at("le") == "+Inf" ? INFINITY : std::stod(s.labels.at("le"));
    CHECK(le > last_le);
    CHECK(s.value >= last_count);
    last_le = le;
    last_count = s.value;
  }
}

TEST_CASE("metrics: the default seconds buckets and an empty histogram") {
  metrics::Histogram h(metrics::kDefaultSecondsBuckets);
  std::string out;
  metrics::TextWriter w(out);
  w.histogram("hs_seconds", "H.", h);
  auto p = parse(out);
  CHECK(find(p, "hs_seconds_bucket", {{"le", "0.005"}}));
  CHECK(find(p, "hs_seconds_bucket", {{"le", "2.5"}}));
  CHECK(find(p, "hs_seconds_bucket", {{"le", "+Inf"}})->value == 0);
  CHECK(find(p, "hs_seconds_sum")->value == 0);
  CHECK(p.samples.size() == metrics::kDefaultSecondsBuckets.size() + 3);
}

TEST_CASE("metrics: histogram bounds must increase") {
  CHECK_THROWS(metrics::Histogram{1, 1});
  CHECK_THROWS(metrics::Histogram{2, 1});
  CHECK_THROWS(metrics::Histogram{1, INFINITY});
}
