// End-to-end: real clients (curl, Python http.client) through a ProxyServer running on its own
// loop thread, to real origins (Python http.server, plain and TLS with a throwaway CA) on
// 127.0.0.x addresses. Each helper process is bounded in time and killed by pid.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/loop.hpp"
#include "core/socket.hpp"
#include "core/sync.hpp"
#include "process.hpp"
#include "proxy/proxy_server.hpp"

using namespace vtunnel;
using namespace vtunnel::proxy;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr auto kProcessTimeout = 20s;
constexpr auto kServerReadyTimeout = 10s;
const std::string kPython = "/usr/bin/python3";

// A ProxyServer on a loop of its own, so blocking test code (waiting for curl) can run here.
class ProxyThread {
 public:
  ProxyThread(std::vector<std::pair<std::string, std::string>> mappings, ProxyOptions options) {
    std::promise<int> ready;
    auto port = ready.get_future();
    thread_ = std::thread([this, mappings, options, &ready] {
      Loop loop;
      Event stop;
      poster_ = loop.poster();
      stop_ = &stop;
      sync_wait(loop, serve(mappings, options, stop, ready));
    });
    port_ = port.get();
  }
  ~ProxyThread() {
    Event* stop = stop_;
    poster_->post([stop] { stop->set(); });
    thread_.join();
  }
  int port() const noexcept { return port_; }

 private:
  static Task<void> serve(std::vector<std::pair<std::string, std::string>> mappings, ProxyOptions options,
                          Event& stop, std::promise<int>& ready) {
    ProxyServer proxy(options);
    auto started = proxy.start(SocketAddress::loopback_v4(0));
    if (!started) {
      ready.set_value(0);
      co_return;
    }
    bool mapped = true;
    for (auto& [domain, target] : mappings) mapped = mapped && proxy.domains().set(domain, target).ok();
    ready.set_value(mapped ? proxy.port() : 0);
    auto w = co_await stop.wait();
    (void)w;
    co_await proxy.close();
  }

  std::thread thread_;
  std::shared_ptr<Loop::Poster> poster_;
  Event* stop_ = nullptr;
  int port_ = 0;
};

test::ProcessResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  auto r = test::run_process(argv, kProcessTimeout, env);
  INFO(argv[0] << " stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE_FALSE(r.timed_out);
  return r;
}

bool has_header(const json& answer, std::string_view name, std::string_view value = {}) {
  for (const auto& h : answer["headers"]) {
    std::string n = h[0].get<std::string>();
    if (n.size() == name.size() &&
        std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      if (value.empty() || h[1].get<std::string>() == value) return true;
    }
  }
  return false;
}

std::uint16_t closed_port() {
  Loop loop;  // SocketAddress/TcpListener need no running loop for bind
  auto l = TcpListener::bind(SocketAddress::loopback_v4(0));
  REQUIRE(l.ok());
  return l->port();
}

// Everything an e2e test needs: a CA and a cert for app.test / 127.0.0.2, a TLS origin on
// 127.0.0.2, a plain origin on 127.0.0.3, and a proxy with app.test:443 and web.test:80 mapped.
struct E2E {
  fs::path dir;
  std::unique_ptr<test::BackgroundServer> tls_origin, plain_origin;
  std::unique_ptr<ProxyThread> proxy;
  std::string proxy_url;

  E2E() {
    char tmpl[] = "/tmp/vtunnel-proxy-e2e-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    make_certificates();
    std::string script = std::string(VTUNNEL_SOURCE_DIR) + "/tests/proxy/origin_server.py";
    tls_origin = std::make_unique<test::BackgroundServer>(
        std::vector<std::string>{kPython, script, "--bind", "127.0.0.2", "--cert", path("srv.pem"), "--key",
                                 path("srv.key"), "--lifetime", "100"},
        kServerReadyTimeout);
    plain_origin = std::make_unique<test::BackgroundServer>(
        std::vector<std::string>{kPython, script, "--bind", "127.0.0.3", "--lifetime", "100"}, kServerReadyTimeout);
    REQUIRE(tls_origin->port() > 0);
    REQUIRE(plain_origin->port() > 0);
    proxy = std::make_unique<ProxyThread>(
        std::vector<std::pair<std::string, std::string>>{
            {"app.test:443", "127.0.0.2:" + std::to_string(tls_origin->port())},
            {"web.test:80", "127.0.0.3:" + std::to_string(plain_origin->port())},
        },
        ProxyOptions{});
    REQUIRE(proxy->port() > 0);
    proxy_url = "http://127.0.0.1:" + std::to_string(proxy->port());
  }
  ~E2E() {
    proxy.reset();
    tls_origin.reset();
    plain_origin.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::string path(const char* name) const { return (dir / name).string(); }

  void make_certificates() {
    {
      std::ofstream ext(path("ext.cnf"));
      ext << "subjectAltName=DNS:app.test,IP:127.0.0.2\nbasicConstraints=CA:FALSE\n"
             "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n";
    }
    auto ok = [](const test::ProcessResult& r) { return r.exit_code == 0; };
    REQUIRE(ok(run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2", "-subj", "/CN=vtunnel test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"})));
    REQUIRE(ok(run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    path("srv.key"), "-out", path("srv.csr"), "-subj", "/CN=app.test"})));
    REQUIRE(ok(run({"openssl", "x509", "-req", "-in", path("srv.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                    "-CAcreateserial", "-out", path("srv.pem"), "-days", "2", "-extfile", path("ext.cnf")})));
  }

  // curl with the test CA and a hard time limit; `args` are appended.
  test::ProcessResult curl(std::vector<std::string> args, std::vector<std::string> env = {}) const {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "--cacert", path("ca.pem")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, env);
  }
  json curl_json(std::vector<std::string> args, std::vector<std::string> env = {}) const {
    auto r = curl(std::move(args), std::move(env));
    INFO("curl stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    return json::parse(r.out);
  }
  std::string tls_port() const { return std::to_string(tls_origin->port()); }
  std::string plain_port() const { return std::to_string(plain_origin->port()); }
};

std::string sha256_of_file(const std::string& file) {
  auto r = run({"sha256sum", file});
  REQUIRE(r.exit_code == 0);
  return r.out.substr(0, 64);
}

std::string make_payload_file(const E2E& e, std::size_t size) {
  std::string file = e.path("payload.bin");
  std::ofstream f(file, std::ios::binary);
  std::uint64_t x = 0x12345678;
  for (std::size_t i = 0; i < size; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    f.put(char(x >> 56));
  }
  return file;
}

}  // namespace

TEST_CASE("e2e: curl HTTPS through CONNECT to a mapped domain (-x and HTTPS_PROXY)", "[proxy][e2e]") {
  E2E e;
  json a = e.curl_json({"-x", e.proxy_url, "https://app.test/hello?x=1"});
  REQUIRE(a["tls"] == true);
  REQUIRE(a["target"] == "/hello?x=1");
  REQUIRE(has_header(a, "Host", "app.test"));
  json b = e.curl_json({"https://app.test/env"}, {"HTTPS_PROXY=" + e.proxy_url});
  REQUIRE(b["target"] == "/env");
  // An upload through the tunnel arrives intact.
  std::string file = make_payload_file(e, 3 << 20);
  json c = e.curl_json({"-x", e.proxy_url, "--data-binary", "@" + file, "https://app.test/upload"});
  REQUIRE(c["body_len"] == 3 << 20);
  REQUIRE(c["body_sha256"] == sha256_of_file(file));
}

TEST_CASE("e2e: curl CONNECT to an unmapped loopback address goes direct", "[proxy][e2e]") {
  E2E e;
  json a = e.curl_json({"-x", e.proxy_url, "https://127.0.0.2:" + e.tls_port() + "/direct"});
  REQUIRE(a["tls"] == true);
  REQUIRE(a["target"] == "/direct");
}

TEST_CASE("e2e: curl plain HTTP, mapped and unmapped; hop-by-hop fields never reach the origin", "[proxy][e2e]") {
  E2E e;
  json a = e.curl_json({"-x", e.proxy_url, "-H", "Connection: X-Hop", "-H", "X-Hop: secret", "-H", "X-E2E: kept", "-H",
                        "Keep-Alive: timeout=5", "-H", "Proxy-Authorization: Basic dXNlcjpwdw==", "-H",
                        "Upgrade: h2c", "http://web.test/plain?a=b"});
  REQUIRE(a["tls"] == false);
  REQUIRE(a["target"] == "/plain?a=b");
  REQUIRE(has_header(a, "Host", "web.test"));
  REQUIRE(has_header(a, "X-E2E", "kept"));
  REQUIRE(has_header(a, "Connection", "close"));
  for (auto gone : {"X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Upgrade", "TE", "Trailer"}) {
    INFO(gone);
    REQUIRE_FALSE(has_header(a, gone));
  }
  json b = e.curl_json({"-x", e.proxy_url, "http://127.0.0.3:" + e.plain_port() + "/unmapped"});
  REQUIRE(b["target"] == "/unmapped");
  REQUIRE(has_header(b, "Host", "127.0.0.3:" + e.plain_port()));
}

TEST_CASE("e2e: curl POST bodies with Content-Length and chunked arrive intact", "[proxy][e2e]") {
  E2E e;
  std::string file = make_payload_file(e, (2 << 20) + 12345);
  std::string sha = sha256_of_file(file);
  json a = e.curl_json({"-x", e.proxy_url, "--data-binary", "@" + file, "http://web.test/cl"});
  REQUIRE(a["framing"] == "content-length");
  REQUIRE(a["body_len"] == (2 << 20) + 12345);
  REQUIRE(a["body_sha256"] == sha);
  json b = e.curl_json({"-x", e.proxy_url, "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file,
                        "http://web.test/chunked"});
  REQUIRE(b["framing"] == "chunked");
  REQUIRE(b["body_len"] == (2 << 20) + 12345);
  REQUIRE(b["body_sha256"] == sha);
}

TEST_CASE("e2e: curl sees 502, 400 and 431 where they belong", "[proxy][e2e]") {
  E2E e;
  std::string dead = std::to_string(closed_port());
  auto r502 = e.curl({"-o", "/dev/null", "-w", "%{http_connect}", "-x", e.proxy_url, "https://127.0.0.1:" + dead + "/"});
  REQUIRE(r502.exit_code != 0);
  REQUIRE(r502.out == "502");
  auto r502b = e.curl({"-o", "/dev/null", "-w", "%{http_code}", "-x", e.proxy_url, "http://127.0.0.1:" + dead + "/"});
  REQUIRE(r502b.out == "502");
  auto r400 = e.curl({"-o", "/dev/null", "-w", "%{http_code}", "-x", e.proxy_url, "--request-target", "/no-host",
                      "http://web.test/"});
  REQUIRE(r400.out == "400");
  auto r431 = e.curl({"-o", "/dev/null", "-w", "%{http_code}", "-x", e.proxy_url, "-H",
                      "X-Big: " + std::string(9000, 'b'), "http://web.test/"});
  REQUIRE(r431.out == "431");
  // Still serving afterwards.
  json ok = e.curl_json({"-x", e.proxy_url, "http://web.test/after"});
  REQUIRE(ok["target"] == "/after");
}

TEST_CASE("e2e: Python http.client through the proxy (CONNECT + TLS, POST, chunked POST)", "[proxy][e2e]") {
  E2E e;
  auto r = run({kPython, std::string(VTUNNEL_SOURCE_DIR) + "/tests/proxy/python_client.py",
                std::to_string(e.proxy->port()), e.path("ca.pem"), "app.test", "http://web.test/py?q=2"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  json out = json::parse(r.out);
  REQUIRE(out["tls_status"] == 200);
  REQUIRE(out["tls"]["tls"] == true);
  REQUIRE(out["tls"]["target"] == "/via-python?x=1");
  REQUIRE(has_header(out["tls"], "X-Client", "python"));
  REQUIRE(out["post_status"] == 200);
  REQUIRE(out["post"]["target"] == "/py?q=2");
  REQUIRE(out["post"]["body_len"] == 256000);
  REQUIRE(out["post"]["body_sha256"] == out["post_sent_sha256"]);
  REQUIRE(out["chunked_status"] == 200);
  REQUIRE(out["chunked"]["framing"] == "chunked");
  REQUIRE(out["chunked"]["body_len"] == 10008);
}
