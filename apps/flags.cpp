#include "flags.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace vtunnel::cli {

void FlagSet::add_string(std::string name, std::string* target, std::string usage) {
  std::string def = target->empty() ? "" : fmt::format("\"{}\"", *target);
  flags_.push_back({std::move(name), std::move(usage), def, "string", false, [target](std::string_view v) {
                      target->assign(v);
                      return true;
                    }});
}

void FlagSet::add_int(std::string name, long* target, std::string usage) {
  std::string def = *target ? std::to_string(*target) : "";
  flags_.push_back({std::move(name), std::move(usage), def, "int", false, [target](std::string_view v) {
                      long x = 0;
                      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
                      if (ec != std::errc() || p != v.data() + v.size()) return false;
                      *target = x;
                      return true;
                    }});
}

void FlagSet::add_bool(std::string name, bool* target, std::string usage) {
  flags_.push_back({std::move(name), std::move(usage), *target ? "true" : "", "", true, [target](std::string_view v) {
                      // strconv.ParseBool's spellings
                      static constexpr std::string_view yes[] = {"1", "t", "T", "true", "TRUE", "True"};
                      static constexpr std::string_view no[] = {"0", "f", "F", "false", "FALSE", "False"};
                      if (std::find(std::begin(yes), std::end(yes), v) != std::end(yes)) *target = true;
                      else if (std::find(std::begin(no), std::end(no), v) != std::end(no)) *target = false;
                      else return false;
                      return true;
                    }});
}

void FlagSet::add_list(std::string name, std::vector<std::string>* target, std::string usage) {
  flags_.push_back({std::move(name), std::move(usage), "", "value", false, [target](std::string_view v) {
                      target->emplace_back(v);
                      return true;
                    }});
}

void FlagSet::add_duration(std::string name, std::chrono::milliseconds* target, std::string usage) {
  std::string def;
  if (target->count() % 1000 == 0 && target->count() != 0) def = fmt::format("{}s", target->count() / 1000);
  else if (target->count() != 0) def = fmt::format("{}ms", target->count());
  flags_.push_back({std::move(name), std::move(usage), def, "duration", false,
                    [target](std::string_view v) { return parse_go_duration(v, *target); }});
}

FlagSet::Flag* FlagSet::find(std::string_view name) {
  for (auto& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool FlagSet::was_set(std::string_view name) const {
  return std::find(set_.begin(), set_.end(), name) != set_.end();
}

FlagSet::Outcome FlagSet::parse(const std::vector<std::string>& args, std::string& error) {
  rest_.clear();
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a.size() < 2 || a[0] != '-') {  // "-" alone and non-flags end the flags
      rest_.assign(args.begin() + long(i), args.end());
      return Outcome::ok;
    }
    std::size_t dashes = (a[1] == '-') ? 2 : 1;
    if (dashes == 2 && a.size() == 2) {  // "--" terminator
      rest_.assign(args.begin() + long(i) + 1, args.end());
      return Outcome::ok;
    }
    std::string_view body = a.substr(dashes);
    if (body.empty() || body[0] == '-' || body[0] == '=') {
      error = fmt::format("bad flag syntax: {}", a);
      return Outcome::error;
    }
    std::string_view name = body, value;
    bool has_value = false;
    if (auto eq = body.find('='); eq != std::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    Flag* f = find(name);
    if (!f) {
      if (name == "h" || name == "help") return Outcome::help;
      error = fmt::format("flag provided but not defined: -{}", name);
      return Outcome::error;
    }
    if (f->is_bool) {
      if (!has_value) value = "true";
      if (!f->set(value)) {
        error = fmt::format("invalid boolean value \"{}\" for -{}: parse error", value, name);
        return Outcome::error;
      }
    } else {
      if (!has_value) {
        if (i + 1 >= args.size()) {
          error = fmt::format("flag needs an argument: -{}", name);
          return Outcome::error;
        }
        value = args[++i];
      }
      if (!f->set(value)) {
        error = fmt::format("invalid value \"{}\" for flag -{}: parse error", value, name);
        return Outcome::error;
      }
    }
    set_.emplace_back(name);
  }
  return Outcome::ok;
}

std::string FlagSet::usage() const {
  std::string out = fmt::format("Usage of {}:\n", command_);
  auto sorted = flags_;
  std::sort(sorted.begin(), sorted.end(), [](const Flag& a, const Flag& b) { return a.name < b.name; });
  for (const auto& f : sorted) {
    out += fmt::format("  -{}{}\n    \t{}", f.name, f.type.empty() ? "" : " " + f.type, f.usage);
    if (!f.default_text.empty()) out += fmt::format(" (default {})", f.default_text);
    out += "\n";
  }
  return out;
}

bool parse_go_duration(std::string_view s, std::chrono::milliseconds& out) {
  if (s.empty()) return false;
  bool negative = false;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    out = std::chrono::milliseconds(0);
    return true;
  }
  // A bare number: seconds (a convenience beyond Go's syntax).
  if (std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    long v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || v > 100'000'000) return false;
    out = std::chrono::milliseconds(v * 1000 * (negative ? -1 : 1));
    return true;
  }
  double total_ms = 0;
  while (!s.empty()) {
    std::size_t i = 0;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == 0) return false;
    double number = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + i, number);
    if (ec != std::errc() || p != s.data() + i) return false;
    s.remove_prefix(i);
    std::size_t j = 0;
    while (j < s.size() && !((s[j] >= '0' && s[j] <= '9') || s[j] == '.')) ++j;
    std::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    double scale;
    if (unit == "ns") scale = 1e-6;
    else if (unit == "us" || unit == "µs") scale = 1e-3;
    else if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else return false;
    total_ms += number * scale;
    if (total_ms > 1e12) return false;
  }
  out = std::chrono::milliseconds(static_cast<long long>(std::llround(total_ms)) * (negative ? -1 : 1));
  return true;
}

}  // namespace vtunnel::cli
