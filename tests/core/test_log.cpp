#include <catch2/catch.hpp>

#include "core/log.hpp"

using namespace vtunnel;

TEST_CASE("log::escaped neutralises peer-supplied text") {
  REQUIRE(log::escaped("plain text 123") == "plain text 123");
  REQUIRE(log::escaped("a\nFAKE LINE") == "a\\x0aFAKE LINE");
  REQUIRE(log::escaped("q\"b\\") == "q\\x22b\\x5c");
  REQUIRE(log::escaped(std::string_view("\x00\xff", 2)) == "\\x00\\xff");
  REQUIRE(log::escaped("abcdef", 3) == "abc...");
}

TEST_CASE("log levels parse") {
  log::Level l{};
  REQUIRE(log::parse_level("debug", l));
  REQUIRE(l == log::Level::debug);
  REQUIRE_FALSE(log::parse_level("loud", l));
}
