#pragma once
// Command-line flags with Go's `flag` package syntax, so scripts written for the Go original
// work unchanged: -name value, -name=value, --name value, --name=value; boolean flags take no
// separate value (-v, -v=false); parsing stops at the first non-flag argument or at "--".
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vtunnel::cli {

class FlagSet {
 public:
  explicit FlagSet(std::string command) : command_(std::move(command)) {}

  void add_string(std::string name, std::string* target, std::string usage);
  void add_int(std::string name, long* target, std::string usage);
  void add_bool(std::string name, bool* target, std::string usage);
  // Repeatable: every occurrence appends.
  void add_list(std::string name, std::vector<std::string>* target, std::string usage);
  // Go duration syntax: "300ms", "30s", "1m30s", "2h"; a bare number is seconds.
  void add_duration(std::string name, std::chrono::milliseconds* target, std::string usage);

  enum class Outcome { ok, help, error };
  // args excludes the program and subcommand names. On error, `error` holds a message in Go's
  // words ("flag provided but not defined: -x").
  Outcome parse(const std::vector<std::string>& args, std::string& error);
  const std::vector<std::string>& rest() const noexcept { return rest_; }
  // Which flags were set explicitly (so environment fallbacks apply only to the others).
  bool was_set(std::string_view name) const;

  std::string usage() const;

 private:
  struct Flag {
    std::string name;
    std::string usage;
    std::string default_text;
    std::string type;  // shown in usage: "string", "int", "duration", "value"
    bool is_bool = false;
    std::function<bool(std::string_view)> set;  // false: invalid value
  };
  Flag* find(std::string_view name);

  std::string command_;
  std::vector<Flag> flags_;
  std::vector<std::string> rest_;
  std::vector<std::string> set_;
};

bool parse_go_duration(std::string_view text, std::chrono::milliseconds& out);

}  // namespace vtunnel::cli
