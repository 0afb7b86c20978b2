#include "tunnel/messages.hpp"

#include <nlohmann/json.hpp>

#include "core/resolver.hpp"
#include "tunnel/errc.hpp"

namespace vtunnel {
namespace {

Result<nlohmann::json> parse_object(ByteSpan bytes) {
  if (bytes.size() > kMaxRequestJson) return tunnel_errc::message_too_large;
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return tunnel_errc::bad_json;
  return j;
}

// A JSON number that is an integer port 1..65535.
Result<std::uint16_t> port_field(const nlohmann::json& j) {
  auto it = j.find("port");
  if (it == j.end() || !it->is_number_integer()) return tunnel_errc::bad_port;
  auto v = it->get<std::int64_t>();
  if (v < 1 || v > 65535) return tunnel_errc::bad_port;
  return std::uint16_t(v);
}

}  // namespace

std::string encode_listen_request(const ListenRequest& r) {
  std::string out = R"({"port":)" + std::to_string(r.port);
  if (!r.local_addr.empty()) out += R"(,"local_addr":)" + nlohmann::json(r.local_addr).dump();
  out += "}";
  return out;
}

Result<ListenRequest> decode_listen_request(ByteSpan json) {
  auto j = parse_object(json);
  if (!j) return j.error();
  auto port = port_field(*j);
  if (!port) return port.error();
  ListenRequest r;
  r.port = *port;
  if (auto it = j->find("local_addr"); it != j->end()) {
    if (!it->is_string()) return tunnel_errc::bad_json;
    r.local_addr = it->get<std::string>();
  }
  return r;
}

std::string encode_tunnel_channel_data(const TunnelChannelData& d) {
  return R"({"port":)" + std::to_string(d.port) + "}";
}

Result<TunnelChannelData> decode_tunnel_channel_data(ByteSpan json) {
  auto j = parse_object(json);
  if (!j) return j.error();
  auto port = port_field(*j);
  if (!port) return port.error();
  return TunnelChannelData{*port};
}

Result<Forward> parse_forward(std::string_view spec) {
  auto eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 >= spec.size()) return tunnel_errc::bad_forward_spec;
  std::string_view port_text = spec.substr(0, eq);
  unsigned port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9' || port > 65535) return tunnel_errc::bad_forward_spec;
    port = port * 10 + unsigned(c - '0');
  }
  if (port < 1 || port > 65535) return tunnel_errc::bad_port;
  Forward f;
  f.remote_port = std::uint16_t(port);
  f.local_addr = std::string(spec.substr(eq + 1));
  std::string_view target = f.local_addr;
  constexpr std::string_view kTls = "tls://";
  if (target.substr(0, kTls.size()) == kTls) {
    f.tls = true;
    target.remove_prefix(kTls.size());
  }
  if (!split_host_port(target, f.host, f.port) || f.host.empty()) return tunnel_errc::bad_forward_spec;
  return f;
}

}  // namespace vtunnel
