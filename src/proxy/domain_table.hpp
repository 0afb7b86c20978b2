#pragma once
// DomainTable: which "host:port" the proxy routes through the tunnel, and to which local
// address ("gitlab.example.com:443" -> "127.0.0.1:8083"). One per loop, not thread-safe.
// Keys are normalised (lower-case host, explicit port), so lookups match however the client
// spelled the name.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.hpp"
#include "proxy/authority.hpp"

namespace vtunnel::proxy {

class DomainTable {
 public:
  // `domain` is "host:port" (port 443 if omitted); `target` is "host:port". Replaces an
  // existing mapping. Fails (and changes nothing) if either is malformed.
  Result<void> set(std::string_view domain, std::string_view target);
  // True if a mapping was removed.
  bool remove(std::string_view domain);
  // The target for `host_port` ("host:port"; port 443 if omitted), if mapped.
  std::optional<std::string> lookup(std::string_view host_port) const;
  std::optional<std::string> lookup(const Authority& authority) const;

  std::size_t size() const noexcept { return map_.size(); }
  void clear() noexcept { map_.clear(); }

 private:
  std::unordered_map<std::string, std::string> map_;
};

}  // namespace vtunnel::proxy
