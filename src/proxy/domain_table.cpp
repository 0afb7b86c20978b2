#include "proxy/domain_table.hpp"

#include "proxy/error.hpp"

namespace vtunnel::proxy {

namespace {
constexpr std::uint16_t kDefaultDomainPort = 443;
}

Result<void> DomainTable::set(std::string_view domain, std::string_view target) {
  auto key = parse_authority(domain, kDefaultDomainPort);
  if (!key) return key.error();
  // The target is dialled as given; it must name a host and an explicit port.
  auto to = parse_authority(target, 0);
  if (!to) return to.error();
  if (to->port == 0) return errc::bad_authority;
  map_[key->to_string()] = to->to_string();
  return {};
}

bool DomainTable::remove(std::string_view domain) {
  auto key = parse_authority(domain, kDefaultDomainPort);
  if (!key) return false;
  return map_.erase(key->to_string()) > 0;
}

std::optional<std::string> DomainTable::lookup(std::string_view host_port) const {
  auto key = parse_authority(host_port, kDefaultDomainPort);
  if (!key) return std::nullopt;
  return lookup(*key);
}

std::optional<std::string> DomainTable::lookup(const Authority& authority) const {
  auto it = map_.find(authority.to_string());
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

}  // namespace vtunnel::proxy
