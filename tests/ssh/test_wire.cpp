#include <catch2/catch.hpp>

#include "hex.hpp"
#include "ssh/wire.hpp"

using namespace vtunnel;
using namespace vtunnel::ssh;
using vtunnel::test::from_hex;

TEST_CASE("Reader reads RFC 4251 types and rejects truncation") {
  Bytes msg;
  Writer w(msg);
  w.u8(7).boolean(true).u32(0xdeadbeef).u64(0x0102030405060708ull).string("abc");
  w.string("a,b,c");
  Reader r(msg);
  REQUIRE(*r.u8() == 7);
  REQUIRE(*r.boolean());
  REQUIRE(*r.u32() == 0xdeadbeef);
  REQUIRE(*r.u64() == 0x0102030405060708ull);
  REQUIRE(*r.text() == "abc");
  REQUIRE(*r.name_list() == "a,b,c");
  REQUIRE(r.expect_end().ok());
  REQUIRE(r.u8().error() == errc::truncated);

  // A string whose length exceeds what is left.
  Bytes bad = from_hex("00000005616263");
  Reader r2(bad);
  REQUIRE(r2.string().error() == errc::truncated);
  // Huge length: no allocation, just an error.
  Bytes huge = from_hex("ffffffff00");
  Reader r3(huge);
  REQUIRE(r3.string().error() == errc::truncated);
  Bytes short_u32 = from_hex("000102");
  Reader r4(short_u32);
  REQUIRE(r4.u32().error() == errc::truncated);
}

TEST_CASE("expect_end rejects trailing bytes") {
  Bytes msg = from_hex("0100");
  Reader r(msg);
  REQUIRE(r.u8().ok());
  REQUIRE(r.expect_end().error() == errc::trailing_bytes);
}

TEST_CASE("name-list syntax") {
  auto parse = [](std::string_view s) {
    Bytes b;
    Writer(b).string(s);
    Reader r(b);
    return r.name_list();
  };
  REQUIRE(parse("").ok());
  REQUIRE(parse("curve25519-sha256,ssh-ed25519").ok());
  REQUIRE_FALSE(parse("a,,b").ok());
  REQUIRE_FALSE(parse(",a").ok());
  REQUIRE_FALSE(parse("a,").ok());
  REQUIRE_FALSE(parse("a b").ok());
  REQUIRE(name_list_contains("a,bc,d", "bc"));
  REQUIRE_FALSE(name_list_contains("a,bcd", "bc"));
}

TEST_CASE("mpint encoding matches RFC 4251 examples") {
  auto enc = [](std::string_view hex) {
    Bytes b;
    Bytes m = from_hex(hex);
    Writer(b).mpint_unsigned(m);
    return vtunnel::test::to_hex(b);
  };
  REQUIRE(enc("") == "00000000");
  REQUIRE(enc("00") == "00000000");
  REQUIRE(enc("09a378f9b2e332a7") == "0000000809a378f9b2e332a7");
  REQUIRE(enc("80") == "000000020080");
  REQUIRE(enc("000080") == "000000020080");

  Bytes ok = from_hex("000000020080");
  Reader r(ok);
  REQUIRE(r.mpint_unsigned().ok());
  Bytes negative = from_hex("00000001ff");
  Reader rn(negative);
  REQUIRE_FALSE(rn.mpint_unsigned().ok());
  Bytes non_minimal = from_hex("000000020001");
  Reader rm(non_minimal);
  REQUIRE_FALSE(rm.mpint_unsigned().ok());
}
