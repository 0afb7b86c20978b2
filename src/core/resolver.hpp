#pragma once
// Asynchronous name resolution: getaddrinfo runs on a small worker pool and the answer is
// posted back to the calling loop, which never blocks. Numeric addresses skip the pool.
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/socket.hpp"
#include "core/task.hpp"

namespace vtunnel {

// Addresses for host:port, in getaddrinfo's order (TCP only). "localhost" and numeric
// addresses never leave the loop thread. errc::resolve_failed (with the host named in the
// log by the caller) when nothing is found.
Task<Result<std::vector<SocketAddress>>> resolve(std::string host, std::uint16_t port);

// Resolves and connects to the first address that accepts, trying each in turn.
Task<Result<TcpStream>> connect_host(std::string host, std::uint16_t port, ConnectOptions options = {});

// Splits "host:port", "[v6]:port" into parts; false if malformed or the port is not 1-65535.
bool split_host_port(std::string_view hostport, std::string& host, std::uint16_t& port);

}  // namespace vtunnel
