#include "tunnel/host_rewriter.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

namespace vtunnel {
namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}
// A request line looks like "TOKEN SP target SP HTTP/x.y".
bool looks_like_request_line(std::string_view line) {
  auto sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0) return false;
  for (char c : line.substr(0, sp)) {
    if (!(c >= 'A' && c <= 'Z')) return false;
  }
  return line.find(" HTTP/1.") != std::string_view::npos;
}
// Could `h` (the bytes buffered so far) still be the start of an HTTP request head?
bool plausible_request_prefix(std::string_view h) {
  auto nl = h.find('\n');
  if (nl != std::string_view::npos) return looks_like_request_line(h.substr(0, nl));
  std::size_t i = 0;
  while (i < h.size() && h[i] >= 'A' && h[i] <= 'Z') ++i;
  if (i == h.size()) return i <= 16;  // still inside the method token
  return i > 0 && h[i] == ' ';
}
}  // namespace

void HostRewriter::feed(ByteSpan in, Bytes& out) {
  while (!in.empty()) {
    switch (mode_) {
      case Mode::passthrough:
        out.insert(out.end(), in.begin(), in.end());
        return;
      case Mode::body: {
        auto n = std::size_t(std::min<std::uint64_t>(body_left_, in.size()));
        out.insert(out.end(), in.begin(), in.begin() + long(n));
        body_left_ -= n;
        in = in.subspan(n);
        if (body_left_ == 0) mode_ = Mode::head;
        break;
      }
      case Mode::head: {
        // Look for the end of the head in what is buffered plus the new bytes.
        std::size_t before = head_.size();
        std::size_t take = std::min(in.size(), kMaxHead + 4 - before);
        head_.insert(head_.end(), in.begin(), in.begin() + long(take));
        std::string_view h(reinterpret_cast<const char*>(head_.data()), head_.size());
        std::size_t search_from = before >= 3 ? before - 3 : 0;
        auto end = h.find("\r\n\r\n", search_from);
        if (end == std::string_view::npos) {
          in = in.subspan(take);
          if (head_.size() > kMaxHead) {
            mode_ = Mode::passthrough;
            out.insert(out.end(), head_.begin(), head_.end());
            head_.clear();
          } else if (!plausible_request_prefix(h)) {
            // Not HTTP (or not a request line we know): stop interpreting.
            mode_ = Mode::passthrough;
            out.insert(out.end(), head_.begin(), head_.end());
            head_.clear();
          }
          break;
        }
        std::size_t head_len = end + 4;
        // Bytes of `in` beyond the head go back to the loop.
        std::size_t used_from_in = head_len - before;
        head_.resize(head_len);
        in = in.subspan(used_from_in);
        complete_head(out, head_len);
        break;
      }
    }
  }
}

void HostRewriter::complete_head(Bytes& out, std::size_t head_len) {
  std::string_view h(reinterpret_cast<const char*>(head_.data()), head_len);
  if (!looks_like_request_line(h.substr(0, h.find('\n')))) {
    mode_ = Mode::passthrough;
    out.insert(out.end(), head_.begin(), head_.end());
    head_.clear();
    return;
  }
  std::string rewritten;
  rewritten.reserve(head_len + host_.size());
  bool chunked_or_unknown = false;
  std::uint64_t content_length = 0;
  std::size_t pos = 0;
  bool first = true;
  while (pos < head_len) {
    auto nl = h.find('\n', pos);
    std::string_view line = h.substr(pos, nl - pos + 1);
    pos = nl + 1;
    if (first) {
      first = false;
      rewritten.append(line);
      continue;
    }
    auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view name = line.substr(0, colon);
      std::string_view value = trim(line.substr(colon + 1));
      if (iequals(name, "host")) {
        rewritten.append("Host: ").append(host_).append("\r\n");
        continue;
      }
      if (iequals(name, "transfer-encoding")) chunked_or_unknown = true;
      if (iequals(name, "content-length")) {
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), content_length);
        if (ec != std::errc() || p != value.data() + value.size()) chunked_or_unknown = true;
      }
    }
    rewritten.append(line);
  }
  out.insert(out.end(), rewritten.begin(), rewritten.end());
  head_.clear();
  if (chunked_or_unknown) {
    mode_ = Mode::passthrough;
  } else if (content_length > 0) {
    mode_ = Mode::body;
    body_left_ = content_length;
  } else {
    mode_ = Mode::head;
  }
}

void HostRewriter::finish(Bytes& out) {
  out.insert(out.end(), head_.begin(), head_.end());
  head_.clear();
}

}  // namespace vtunnel
