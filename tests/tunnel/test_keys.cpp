#include <catch2/catch.hpp>

#include "tunnel/errc.hpp"
#include "tunnel/keys.hpp"

using namespace vtunnel;

// Known answers produced by an independent implementation: the Go test peer on
// golang.org/x/crypto (tests/peers: `vtpeer pubkey`, `vtpeer hostkey`).
TEST_CASE("keys: known answers from the Go peer", "[tunnel]") {
  auto priv = parse_private_key("vt-priv-7dXUbWAJCo29ZMmI5V6lTKAJW+S2TK9bJFeRIkfm+FE");
  REQUIRE(priv.ok());
  REQUIRE(format_public_key(priv->public_key()) == "vt-pub-M/iXsjuDZ/rzE7+7UpKCjayrpb298aXsjpnyc2LPtns");
  REQUIRE(format_private_key(*priv) == "vt-priv-7dXUbWAJCo29ZMmI5V6lTKAJW+S2TK9bJFeRIkfm+FE");

  auto pub = parse_public_key("vt-pub-M/iXsjuDZ/rzE7+7UpKCjayrpb298aXsjpnyc2LPtns");
  REQUIRE(pub.ok());
  // `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDzlPlryPFKO9s5Tb4ny/tVsvqe6F1iO8H47b3yNfSmx`
  PublicKey host = derive_host_key(*pub).public_key();
  Bytes blob = ssh_ed25519_blob(host);
  REQUIRE(base64_encode_unpadded(blob) ==
          "AAAAC3NzaC1lZDI1NTE5AAAAIDzlPlryPFKO9s5Tb4ny/tVsvqe6F1iO8H47b3yNfSmx");

  // The all-zero seed: RFC 8032's public key for it, and the Go peer's derived host key.
  auto zero = parse_private_key("vt-priv-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  REQUIRE(zero.ok());
  REQUIRE(format_public_key(zero->public_key()) == "vt-pub-O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik");
  REQUIRE(base64_encode_unpadded(ssh_ed25519_blob(derive_host_key(zero->public_key()).public_key())) ==
          "AAAAC3NzaC1lZDI1NTE5AAAAIB1mFni8B99IA6qAvW8NIHMrqj6pWnrmLbUQUdIQ+csv");
}

TEST_CASE("keys: generated keys round-trip and differ", "[tunnel]") {
  auto a = generate_private_key();
  auto b = generate_private_key();
  REQUIRE(a.seed() != b.seed());
  auto text = format_private_key(a);
  REQUIRE(text.size() == 8 + 43);
  auto back = parse_private_key(text);
  REQUIRE(back.ok());
  REQUIRE(back->seed() == a.seed());
  auto pub_text = format_public_key(a.public_key());
  REQUIRE(pub_text.size() == 7 + 43);
  REQUIRE(parse_public_key(pub_text)->bytes == a.public_key().bytes);
}

TEST_CASE("keys: bad input gives a clear error", "[tunnel]") {
  REQUIRE(parse_private_key("vt-pub-M/iXsjuDZ/rzE7+7UpKCjayrpb298aXsjpnyc2LPtns").error() ==
          tunnel_errc::bad_private_key_prefix);
  REQUIRE(parse_public_key("vt-priv-7dXUbWAJCo29ZMmI5V6lTKAJW+S2TK9bJFeRIkfm+FE").error() ==
          tunnel_errc::bad_public_key_prefix);
  REQUIRE(parse_private_key("vt-priv-7dXUbWAJCo29ZMmI5V6lTKAJW+S2TK9bJFeRIkfm+FE=").error() ==
          tunnel_errc::bad_key_encoding);  // padding
  REQUIRE(parse_private_key("vt-priv-7dXUbWAJCo29ZMmI5V6lTKAJW+S2TK9bJFeRIkfm+F").error() ==
          tunnel_errc::bad_key_length);  // 42 chars -> 31 bytes
  REQUIRE(parse_private_key("vt-priv-7dXUbWAJCo29ZMmI5V6lTKAJW+S2TK9bJFeRIkfm+FEAAAA").error() ==
          tunnel_errc::bad_key_length);
  REQUIRE(parse_private_key("vt-priv-7dXUbWAJCo29ZMmI5V6lTKAJW-S2TK9bJFeRIkfm+FE").error() ==
          tunnel_errc::bad_key_encoding);  // URL alphabet
  REQUIRE(parse_private_key("vt-priv-").error() == tunnel_errc::bad_key_length);
  REQUIRE(parse_private_key("").error() == tunnel_errc::bad_private_key_prefix);
  REQUIRE_FALSE(parse_private_key("vt-priv-7dXUbWAJCo29ZMmI5V6lTKAJW+S2TK9bJFeRIkfm+FE").error());
  REQUIRE_FALSE(make_error_code(tunnel_errc::bad_key_length).message().empty());
}

TEST_CASE("base64 unpadded matches RFC 4648 vectors without padding", "[tunnel]") {
  REQUIRE(base64_encode_unpadded(as_bytes("")) == "");
  REQUIRE(base64_encode_unpadded(as_bytes("f")) == "Zg");
  REQUIRE(base64_encode_unpadded(as_bytes("fo")) == "Zm8");
  REQUIRE(base64_encode_unpadded(as_bytes("foo")) == "Zm9v");
  REQUIRE(base64_encode_unpadded(as_bytes("foobar")) == "Zm9vYmFy");
  REQUIRE(as_string(*base64_decode_unpadded("Zm9vYg")) == "foob");
  REQUIRE(as_string(*base64_decode_unpadded("Zm9vYmE")) == "fooba");
  REQUIRE_FALSE(base64_decode_unpadded("Zm9vY").ok());
}
