#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "core/result.hpp"

using namespace vtunnel;

TEST_CASE("Result holds a value or an error") {
  Result<int> ok = 42;
  REQUIRE(ok.ok());
  REQUIRE(*ok == 42);

  Result<int> bad = errc::eof;
  REQUIRE_FALSE(bad.ok());
  REQUIRE(bad.error() == errc::eof);
  REQUIRE(bad.error().message() == "end of stream");
  REQUIRE_THROWS_AS(bad.value(), std::system_error);

  Result<void> v;
  REQUIRE(v.ok());
  Result<void> e = from_errno(-ECONNREFUSED);
  REQUIRE(e.error() == std::errc::connection_refused);
}
