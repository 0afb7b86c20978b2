#pragma once
// One line per event: "2026-11-26T01:02:03.456Z INFO  message". Text that a peer supplied
// must pass through log::escaped() so a hostile peer cannot forge log lines.
#include <fmt/format.h>

#include <string>
#include <string_view>

namespace vtunnel::log {

enum class Level { trace = 0, debug, info, warn, error, off };
enum class Format { text, json };

void set_level(Level level) noexcept;
Level level() noexcept;
void set_format(Format format) noexcept;
// Parses "trace|debug|info|warn|error|off"; false if the name is unknown.
bool parse_level(std::string_view name, Level& out) noexcept;

void write(Level level, std::string_view message) noexcept;

// Printable ASCII is kept; everything else (control bytes, quotes, backslashes, non-ASCII) is
// escaped as \xNN, and the result is cut at max_len bytes of input with "..." appended.
std::string escaped(std::string_view peer_text, std::size_t max_len = 200);

template <class... Args>
void log_at(Level lvl, fmt::format_string<Args...> f, Args&&... args) {
  if (lvl < level()) return;
  write(lvl, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args> void trace(fmt::format_string<Args...> f, Args&&... a) { log_at(Level::trace, f, std::forward<Args>(a)...); }
template <class... Args> void debug(fmt::format_string<Args...> f, Args&&... a) { log_at(Level::debug, f, std::forward<Args>(a)...); }
template <class... Args> void info(fmt::format_string<Args...> f, Args&&... a) { log_at(Level::info, f, std::forward<Args>(a)...); }
template <class... Args> void warn(fmt::format_string<Args...> f, Args&&... a) { log_at(Level::warn, f, std::forward<Args>(a)...); }
template <class... Args> void error(fmt::format_string<Args...> f, Args&&... a) { log_at(Level::error, f, std::forward<Args>(a)...); }

}  // namespace vtunnel::log
