// vtunnel-ceiling: issue 7's "ceiling", the least work a pair of relays that encrypt can do: blocking
// sockets, big reads, AES-128-GCM (Botan 2) sealed and opened in place; no WebSocket, no SSH, no
// handshake. vtunnel-bench --compare-ceiling runs it beside ours, so the two are measured in the
// same run (the host's speed varies during the day).
//
//   vtunnel-ceiling entry LISTEN_PORT EXIT_PORT     plaintext in, records to the exit
//   vtunnel-ceiling exit  LISTEN_PORT TARGET_PORT   records in, plaintext to the target
//
// Each listens on 127.0.0.1:LISTEN_PORT (0: any free port) and prints "listening on
// 127.0.0.1:PORT" once it does; for each accepted connection it connects to 127.0.0.1:<next
// port> and relays both directions, one thread each, until both ends are done (a half-close
// travels through). Runs until killed.
//
// Record: u32 big-endian length L (1 .. 256 KiB) || L bytes of ciphertext || 16-byte tag. The
// length field is the associated data; nonce = u32 direction (0 entry->exit, 1 exit->entry) ||
// u64 record counter, both big-endian. A bad length, a truncated record or a failed tag closes
// that connection (both sides of it) and nothing else.
//
// A baseline for speed, not a secure channel: the key is a fixed constant and every connection
// starts its counters at zero (nonces repeat across connections).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <botan/aead.h>
#include <botan/exceptn.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kChunk = 256 * 1024;  // largest payload per record (and per read)
constexpr std::size_t kHead = 4;
constexpr std::size_t kTag = 16;
constexpr std::uint8_t kKey[16] = {0x76, 0x74, 0x75, 0x6e, 0x6e, 0x65, 0x6c, 0x2d,
                                   0x63, 0x65, 0x69, 0x6c, 0x69, 0x6e, 0x67, 0x21};
constexpr std::uint32_t kUpstream = 0;    // entry -> exit
constexpr std::uint32_t kDownstream = 1;  // exit -> entry

void store_be32(std::uint32_t v, std::uint8_t* p) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = std::uint8_t(v);
}
void store_be64(std::uint64_t v, std::uint8_t* p) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = std::uint8_t(v);
}
std::uint32_t load_be32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool send_all(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= std::size_t(w);
  }
  return true;
}

enum class Read { ok, eof, error };  // eof: clean, before the first byte

Read recv_exact(int fd, std::uint8_t* p, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, p + got, n - got, MSG_WAITALL);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 && got == 0) return Read::eof;
    if (r <= 0) return Read::error;
    got += std::size_t(r);
  }
  return Read::ok;
}

// One record buffer: the length field, then the payload starting on a 64-byte boundary (copies
// into and out of it run fastest aligned), then room for the tag.
class RecordBuffer {
 public:
  RecordBuffer() : storage_(64 + kChunk + kTag + 64) {
    auto addr = reinterpret_cast<std::uintptr_t>(storage_.data());
    payload_ = storage_.data() + (64 - addr % 64) % 64 + 64;
  }
  std::uint8_t* record() { return payload_ - kHead; }
  std::uint8_t* payload() { return payload_; }

 private:
  std::vector<std::uint8_t> storage_;
  std::uint8_t* payload_ = nullptr;
};

// AES-128-GCM over one direction of one connection, in place.
class Aead {
 public:
  Aead(bool seal, std::uint32_t direction)
      : mode_(Botan::AEAD_Mode::create_or_throw("AES-128/GCM", seal ? Botan::ENCRYPTION : Botan::DECRYPTION)) {
    mode_->set_key(kKey, sizeof kKey);
    store_be32(direction, nonce_);
    tail_.reserve(64 + kTag);
  }
  // `record` holds the length field and `len` payload bytes; writes the tag after them.
  void seal(std::uint8_t* record, std::size_t len) {
    start(record);
    std::uint8_t* body = record + kHead;
    std::size_t bulk = len - len % mode_->update_granularity();
    if (bulk > 0) mode_->process(body, bulk);
    tail_.assign(body + bulk, body + len);
    mode_->finish(tail_);  // the rest of the payload, then the tag
    std::memcpy(body + bulk, tail_.data(), tail_.size());
  }
  // `record` holds the length field, `len` bytes of ciphertext and the tag; false if the tag
  // does not match (the payload is then garbage).
  bool open(std::uint8_t* record, std::size_t len) {
    start(record);
    std::uint8_t* body = record + kHead;
    std::size_t bulk = len - len % mode_->update_granularity();
    if (bulk > 0) mode_->process(body, bulk);
    tail_.assign(body + bulk, body + len + kTag);
    try {
      mode_->finish(tail_);
    } catch (const Botan::Invalid_Authentication_Tag&) {
      return false;
    }
    std::memcpy(body + bulk, tail_.data(), tail_.size());
    return true;
  }

 private:
  void start(const std::uint8_t* record) {
    store_be64(counter_++, nonce_ + 4);
    mode_->set_associated_data(record, kHead);
    mode_->start(nonce_, sizeof nonce_);
  }
  std::unique_ptr<Botan::AEAD_Mode> mode_;
  std::uint8_t nonce_[12] = {};
  std::uint64_t counter_ = 0;
  Botan::secure_vector<std::uint8_t> tail_;
};

// Plaintext from `from`, records to `to`; on EOF half-closes `to`. False on any failure.
bool seal_pump(int from, int to, std::uint32_t direction) {
  Aead aead(true, direction);
  RecordBuffer buf;
  for (;;) {
    ssize_t n = ::recv(from, buf.payload(), kChunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return ::shutdown(to, SHUT_WR) == 0;
    store_be32(std::uint32_t(n), buf.record());
    aead.seal(buf.record(), std::size_t(n));
    if (!send_all(to, buf.record(), kHead + std::size_t(n) + kTag)) return false;
  }
}

// Records from `from`, plaintext to `to`; on EOF between records half-closes `to`. False on any
// failure, with the reason in `why` when it is the peer's bytes.
bool open_pump(int from, int to, std::uint32_t direction, const char*& why) {
  Aead aead(false, direction);
  RecordBuffer buf;
  for (;;) {
    Read r = recv_exact(from, buf.record(), kHead);
    if (r == Read::eof) return ::shutdown(to, SHUT_WR) == 0;
    if (r == Read::error) return false;
    std::uint32_t len = load_be32(buf.record());
    if (len == 0 || len > kChunk) {
      why = "bad record length";
      return false;
    }
    if (recv_exact(from, buf.payload(), len + kTag) != Read::ok) {
      why = "truncated record";
      return false;
    }
    if (!aead.open(buf.record(), len)) {
      why = "authentication failure";
      return false;
    }
    if (!send_all(to, buf.payload(), len)) return false;
  }
}

int connect_loopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  set_nodelay(fd);
  return fd;
}

// One accepted connection, both directions; closes everything before returning.
void serve(int accepted, bool entry, std::uint16_t next_port) {
  int next = connect_loopback(next_port);
  if (next < 0) {
    ::close(accepted);
    return;
  }
  int plain = entry ? accepted : next;
  int sealed = entry ? next : accepted;
  // Either direction failing ends the connection: shutting both sockets down wakes the other.
  auto abort_both = [plain, sealed] {
    ::shutdown(plain, SHUT_RDWR);
    ::shutdown(sealed, SHUT_RDWR);
  };
  auto report = [entry](const char* why) {
    if (why) std::fprintf(stderr, "vtunnel-ceiling %s: closing a connection: %s\n", entry ? "entry" : "exit", why);
  };
  try {
    std::thread opener([&] {
      const char* why = nullptr;
      try {
        if (!open_pump(sealed, plain, entry ? kDownstream : kUpstream, why)) abort_both();
      } catch (const std::exception& e) {
        why = e.what();
        abort_both();
      }
      report(why);
    });
    try {
      if (!seal_pump(plain, sealed, entry ? kUpstream : kDownstream)) abort_both();
    } catch (const std::exception& e) {
      report(e.what());
      abort_both();
    }
    opener.join();
  } catch (const std::exception& e) {  // no thread for the second direction
    report(e.what());
  }
  ::close(plain);
  ::close(sealed);
}

int usage() {
  std::fprintf(stderr,
               "usage: vtunnel-ceiling entry LISTEN_PORT EXIT_PORT\n"
               "       vtunnel-ceiling exit  LISTEN_PORT TARGET_PORT\n"
               "(127.0.0.1 only; LISTEN_PORT 0 picks a free port, printed as \"listening on 127.0.0.1:PORT\")\n");
  return 2;
}

bool parse_port(const char* s, std::uint16_t& port) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > 65535) return false;
  port = std::uint16_t(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return usage();
  std::string role = argv[1];
  std::uint16_t listen_port = 0, next_port = 0;
  if ((role != "entry" && role != "exit") || !parse_port(argv[2], listen_port) || !parse_port(argv[3], next_port) ||
      next_port == 0)
    return usage();
  bool entry = role == "entry";
  ::signal(SIGPIPE, SIG_IGN);

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(listen_port);
  socklen_t len = sizeof a;
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 4096) != 0 ||
      ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::fprintf(stderr, "vtunnel-ceiling %s: cannot listen on 127.0.0.1:%u: %s\n", role.c_str(), unsigned(listen_port),
                 std::strerror(errno));
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u\n", unsigned(ntohs(a.sin_port)));
  std::fflush(stdout);

  for (;;) {
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // let connections finish
        continue;
      }
      std::fprintf(stderr, "vtunnel-ceiling %s: accept: %s\n", role.c_str(), std::strerror(errno));
      return 1;
    }
    set_nodelay(fd);
    try {
      std::thread(serve, fd, entry, next_port).detach();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "vtunnel-ceiling %s: no thread for a connection: %s\n", role.c_str(), e.what());
      ::close(fd);
    }
  }
}
