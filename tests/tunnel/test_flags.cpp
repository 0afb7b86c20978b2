#include <catch2/catch.hpp>

#include "flags.hpp"

using namespace vtunnel::cli;
using namespace std::chrono_literals;

namespace {
struct Fixture {
  std::string server;
  long port = 3001;
  bool verbose = false;
  std::vector<std::string> forwards;
  std::chrono::milliseconds keepalive{30'000};
  FlagSet flags{"vtunnel client"};
  Fixture() {
    flags.add_string("server", &server, "WebSocket server URL");
    flags.add_int("port", &port, "port");
    flags.add_bool("v", &verbose, "verbose");
    flags.add_list("forward", &forwards, "forward");
    flags.add_duration("keepalive", &keepalive, "keepalive");
  }
  FlagSet::Outcome parse(std::vector<std::string> args, std::string& err) { return flags.parse(args, err); }
};
}  // namespace

TEST_CASE("Go flag syntax: every spelling", "[tunnel]") {
  Fixture f;
  std::string err;
  REQUIRE(f.parse({"-server", "ws://a/", "--port=9", "-v", "-forward", "1=a:1", "--forward=2=b:2",
                   "-keepalive", "1m30s", "rest", "-port", "7"},
                  err) == FlagSet::Outcome::ok);
  REQUIRE(f.server == "ws://a/");
  REQUIRE(f.port == 9);
  REQUIRE(f.verbose);
  REQUIRE(f.forwards == std::vector<std::string>{"1=a:1", "2=b:2"});
  REQUIRE(f.keepalive == 90s);
  REQUIRE(f.flags.rest() == std::vector<std::string>{"rest", "-port", "7"});  // stops at non-flag
  REQUIRE(f.flags.was_set("server"));
  REQUIRE_FALSE(f.flags.was_set("nope"));
}

TEST_CASE("Go flag syntax: errors in Go's words", "[tunnel]") {
  std::string err;
  {
    Fixture f;
    REQUIRE(f.parse({"-nope"}, err) == FlagSet::Outcome::error);
    REQUIRE(err == "flag provided but not defined: -nope");
  }
  {
    Fixture f;
    REQUIRE(f.parse({"-port", "abc"}, err) == FlagSet::Outcome::error);
    REQUIRE(err == "invalid value \"abc\" for flag -port: parse error");
  }
  {
    Fixture f;
    REQUIRE(f.parse({"-server"}, err) == FlagSet::Outcome::error);
    REQUIRE(err == "flag needs an argument: -server");
  }
  {
    Fixture f;
    REQUIRE(f.parse({"-v=maybe"}, err) == FlagSet::Outcome::error);
  }
  {
    Fixture f;
    REQUIRE(f.parse({"---x"}, err) == FlagSet::Outcome::error);
    REQUIRE(err == "bad flag syntax: ---x");
  }
  {
    Fixture f;
    REQUIRE(f.parse({"-h"}, err) == FlagSet::Outcome::help);
    REQUIRE(f.parse({"--help"}, err) == FlagSet::Outcome::help);
    REQUIRE(f.flags.usage().find("-server string") != std::string::npos);
    REQUIRE(f.flags.usage().find("(default 30s)") != std::string::npos);
  }
  {
    Fixture f;
    REQUIRE(f.parse({"-v=false", "--", "-server", "x"}, err) == FlagSet::Outcome::ok);
    REQUIRE_FALSE(f.verbose);
    REQUIRE(f.server.empty());
    REQUIRE(f.flags.rest() == std::vector<std::string>{"-server", "x"});
  }
}

TEST_CASE("Go durations", "[tunnel]") {
  std::chrono::milliseconds d{};
  REQUIRE(parse_go_duration("300ms", d));
  REQUIRE(d == 300ms);
  REQUIRE(parse_go_duration("2h45m", d));
  REQUIRE(d == 165min);
  REQUIRE(parse_go_duration("1.5s", d));
  REQUIRE(d == 1500ms);
  REQUIRE(parse_go_duration("-1s", d));
  REQUIRE(d == -1s);
  REQUIRE(parse_go_duration("0", d));
  REQUIRE(d == 0ms);
  REQUIRE(parse_go_duration("10", d));
  REQUIRE(d == 10s);
  REQUIRE_FALSE(parse_go_duration("", d));
  REQUIRE_FALSE(parse_go_duration("5 s", d));
  REQUIRE_FALSE(parse_go_duration("5x", d));
  REQUIRE_FALSE(parse_go_duration("s", d));
}
