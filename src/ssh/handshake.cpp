// Connection: KEXINIT negotiation, ECDH key exchange, NEWKEYS, rekeying, strict kex.
#include <botan/mem_ops.h>

#include "core/log.hpp"
#include "ssh/connection.hpp"

namespace vtunnel::ssh {
namespace {

constexpr std::string_view kStrictClient = "kex-strict-c-v00@openssh.com";
constexpr std::string_view kStrictServer = "kex-strict-s-v00@openssh.com";
constexpr std::string_view kClientHostKeyAlgorithms = "ssh-ed25519,ecdsa-sha2-nistp256";

std::string join(std::span<const std::string_view> names) {
  std::string s;
  for (auto n : names) {
    if (!s.empty()) s += ',';
    s += n;
  }
  return s;
}

std::string_view first_name(std::string_view list) { return list.substr(0, list.find(',')); }

// RFC 4253 §7.1: the first algorithm on the client's list that the server also lists.
std::string choose(std::string_view client, std::string_view server) {
  while (!client.empty()) {
    auto comma = client.find(',');
    std::string_view name = client.substr(0, comma);
    if (name_list_contains(server, name)) return std::string(name);
    if (comma == std::string_view::npos) break;
    client.remove_prefix(comma + 1);
  }
  return {};
}

struct KexInitLists {
  std::string_view kex, host_key, enc_c2s, enc_s2c, mac_c2s, mac_s2c, comp_c2s, comp_s2c;
  bool first_packet_follows = false;
};

// Parses a KEXINIT payload after its message type byte.
Result<KexInitLists> parse_kexinit(Reader& r) {
  KexInitLists l;
  if (!r.fixed(16)) return errc::truncated;  // cookie
  std::string_view* fields[] = {&l.kex, &l.host_key, &l.enc_c2s, &l.enc_s2c, &l.mac_c2s,
                                &l.mac_s2c, &l.comp_c2s, &l.comp_s2c};
  for (auto* f : fields) {
    auto v = r.name_list();
    if (!v) return v.error();
    *f = *v;
  }
  for (int i = 0; i < 2; ++i)  // languages: ignored
    if (!r.name_list()) return errc::protocol_error;
  auto follows = r.boolean();
  auto reserved = r.u32();
  if (!follows || !reserved) return errc::truncated;
  // Later extensions may append fields; RFC 4253 has none, OpenSSH rejects none: be lenient.
  l.first_packet_follows = *follows;
  return l;
}

}  // namespace

void Connection::send_kexinit() {
  std::string kex = join(supported_kex());
  if (!first_kex_done_) {
    kex += ',';
    kex += config_.role == Role::client ? kStrictClient : kStrictServer;
  }
  std::string host_keys = config_.role == Role::client ? std::string(kClientHostKeyAlgorithms)
                                                       : std::string(config_.host_key->algorithm());
  std::vector<std::string_view> cipher_names;
  if (config_.ciphers.empty()) {
    for (const auto& c : supported_ciphers()) cipher_names.push_back(c.name);
  } else {
    for (const auto& c : config_.ciphers)
      if (find_cipher(c)) cipher_names.push_back(c);
  }
  std::string ciphers = join(cipher_names);
  Bytes p;
  Writer w(p);
  w.u8(msg::kKexInit);
  p.resize(17);
  rng_.randomize(p.data() + 1, 16);
  w.string(kex).string(host_keys).string(ciphers).string(ciphers);
  w.string(kMacHmacSha256Etm).string(kMacHmacSha256Etm).string("none").string("none");
  w.string("").string("").boolean(false).u32(0);
  kex_.our_kexinit = p;
  kex_.sent_kexinit = true;
  write_packet(p);
}

void Connection::handle_kex_message(std::uint8_t type, ByteSpan payload, Reader& r) {
  // A wrongly guessed first kex packet from the peer is skipped (RFC 4253 §7).
  if (kex_.ignore_guessed_packet && type >= msg::kKexEcdhInit) {
    kex_.ignore_guessed_packet = false;
    return;
  }
  switch (type) {
    case msg::kKexInit: return on_kexinit(payload, r);
    case msg::kNewKeys: return on_newkeys(r);
    case msg::kKexEcdhInit: return on_ecdh_init(r);
    case msg::kKexEcdhReply: return on_ecdh_reply(r);
    default:
      fail(errc::unexpected_message, DisconnectReason::protocol_error,
           "unexpected key exchange message " + std::to_string(type));
  }
}

void Connection::on_kexinit(ByteSpan payload, Reader& r) {
  if (kex_.received_kexinit) {
    fail(errc::unexpected_message, DisconnectReason::protocol_error, "KEXINIT during key exchange");
    return;
  }
  const bool first_packet = decoder_.last_sequence() == 0 && !first_kex_done_;
  kex_.peer_kexinit.assign(payload.begin(), payload.end());
  kex_.received_kexinit = true;
  if (!kex_.sent_kexinit) send_kexinit();
  Reader peer(r);
  if (!negotiate(peer)) return;
  if (strict_kex_ && !first_kex_done_ && !first_packet) {
    fail(errc::protocol_error, DisconnectReason::protocol_error,
         "strict key exchange: KEXINIT was not the first packet");
    return;
  }
  auto agreement = make_key_agreement(kex_.algs.kex, rng_);
  if (!agreement) {
    fail(errc::kex_failed, DisconnectReason::key_exchange_failed, "key agreement setup failed");
    return;
  }
  kex_.agreement = std::move(*agreement);
  if (config_.role == Role::client) {
    Bytes p;
    Writer(p).u8(msg::kKexEcdhInit).string(kex_.agreement->public_value());
    write_packet(p);
  }
}

bool Connection::negotiate(Reader& peer_reader) {
  auto peer = parse_kexinit(peer_reader);
  if (!peer) {
    fail(peer.error(), DisconnectReason::protocol_error, "malformed KEXINIT");
    return false;
  }
  Reader our_reader(kex_.our_kexinit);
  (void)our_reader.u8();
  auto ours = parse_kexinit(our_reader);
  const bool client = config_.role == Role::client;
  const KexInitLists& c = client ? *ours : *peer;
  const KexInitLists& s = client ? *peer : *ours;

  if (!first_kex_done_)
    strict_kex_ = name_list_contains(peer->kex, client ? kStrictServer : kStrictClient);

  Algorithms a;
  a.kex = choose(c.kex, s.kex);
  a.host_key = choose(c.host_key, s.host_key);
  a.cipher_c2s = choose(c.enc_c2s, s.enc_c2s);
  a.cipher_s2c = choose(c.enc_s2c, s.enc_s2c);
  const CipherSpec* c2s = find_cipher(a.cipher_c2s);
  const CipherSpec* s2c = find_cipher(a.cipher_s2c);
  if (c2s && !c2s->is_aead) a.mac_c2s = choose(c.mac_c2s, s.mac_c2s);
  if (s2c && !s2c->is_aead) a.mac_s2c = choose(c.mac_s2c, s.mac_s2c);
  std::string comp_c2s = choose(c.comp_c2s, s.comp_c2s), comp_s2c = choose(c.comp_s2c, s.comp_s2c);

  auto missing = [&](const char* what, std::string_view peer_list) {
    fail(errc::kex_failed, DisconnectReason::key_exchange_failed,
         std::string("no common ") + what + " algorithm; peer offers: " + log::escaped(peer_list, 300));
    return false;
  };
  if (a.kex.empty()) return missing("key exchange", peer->kex);
  if (a.host_key.empty()) return missing("host key", peer->host_key);
  if (!c2s) return missing("cipher (client to server)", peer->enc_c2s);
  if (!s2c) return missing("cipher (server to client)", peer->enc_s2c);
  if (!c2s->is_aead && a.mac_c2s.empty()) return missing("MAC (client to server)", peer->mac_c2s);
  if (!s2c->is_aead && a.mac_s2c.empty()) return missing("MAC (server to client)", peer->mac_s2c);
  if (comp_c2s != "none" || comp_s2c != "none") return missing("compression", peer->comp_c2s);

  if (peer->first_packet_follows) {
    bool guessed_right = first_name(peer->kex) == a.kex && first_name(peer->host_key) == a.host_key;
    kex_.ignore_guessed_packet = !guessed_right;
  }
  kex_.algs = std::move(a);
  return true;
}

void Connection::on_ecdh_init(Reader& r) {
  if (config_.role != Role::server || !kex_.agreement || kex_.pending_in) {
    fail(errc::unexpected_message, DisconnectReason::protocol_error, "unexpected KEX_ECDH_INIT");
    return;
  }
  auto client_public = r.string();
  if (!client_public || !r.expect_end()) {
    fail(errc::protocol_error, DisconnectReason::protocol_error, "malformed KEX_ECDH_INIT");
    return;
  }
  auto k = kex_.agreement->shared_secret(*client_public);
  if (!k) {
    fail(errc::kex_failed, DisconnectReason::key_exchange_failed, "invalid client key share");
    return;
  }
  const Bytes& host_blob = config_.host_key->public_blob();
  Bytes h = exchange_hash({peer_version_, our_version_, kex_.peer_kexinit, kex_.our_kexinit, host_blob,
                           *client_public, kex_.agreement->public_value(), *k});
  Bytes signature = config_.host_key->sign(h, rng_);
  Bytes p;
  Writer(p)
      .u8(msg::kKexEcdhReply)
      .string(host_blob)
      .string(kex_.agreement->public_value())
      .string(signature);
  write_packet(p);
  if (!install_keys(*k, h)) return;
  send_newkeys();
}

void Connection::on_ecdh_reply(Reader& r) {
  if (config_.role != Role::client || !kex_.agreement || kex_.pending_in) {
    fail(errc::unexpected_message, DisconnectReason::protocol_error, "unexpected KEX_ECDH_REPLY");
    return;
  }
  auto host_blob = r.string();
  auto server_public = r.string();
  auto signature = r.string();
  if (!host_blob || !server_public || !signature || !r.expect_end()) {
    fail(errc::protocol_error, DisconnectReason::protocol_error, "malformed KEX_ECDH_REPLY");
    return;
  }
  auto algorithm = blob_algorithm(*host_blob);
  if (!algorithm || *algorithm != kex_.algs.host_key) {
    fail(errc::kex_failed, DisconnectReason::key_exchange_failed, "host key of the wrong type");
    return;
  }
  auto k = kex_.agreement->shared_secret(*server_public);
  if (!k) {
    fail(errc::kex_failed, DisconnectReason::key_exchange_failed, "invalid server key share");
    return;
  }
  Bytes h = exchange_hash({our_version_, peer_version_, kex_.our_kexinit, kex_.peer_kexinit, *host_blob,
                           kex_.agreement->public_value(), *server_public, *k});
  if (!verify_signature(*algorithm, *host_blob, *signature, h)) {
    fail(errc::kex_failed, DisconnectReason::key_exchange_failed,
         "server host key signature does not verify");
    return;
  }
  if (!config_.verify_host_key(*algorithm, *host_blob)) {
    fail(errc::host_key_mismatch, DisconnectReason::host_key_not_verifiable,
         "server host key not accepted");
    return;
  }
  if (!install_keys(*k, h)) return;
  send_newkeys();
}

bool Connection::install_keys(ByteSpan k, ByteSpan h) {
  if (session_id_.empty()) session_id_.assign(h.begin(), h.end());
  const CipherSpec* c2s = find_cipher(kex_.algs.cipher_c2s);
  const CipherSpec* s2c = find_cipher(kex_.algs.cipher_s2c);
  auto make = [&](const CipherSpec* spec, char iv, char key, char mac) {
    return make_cipher(spec->name, derive_key(k, h, key, session_id_, spec->key_size),
                       derive_key(k, h, iv, session_id_, spec->iv_size),
                       derive_key(k, h, mac, session_id_, spec->mac_key_size));
  };
  const bool client = config_.role == Role::client;
  auto c2s_cipher = make(c2s, 'A', 'C', 'E');
  auto s2c_cipher = make(s2c, 'B', 'D', 'F');
  if (!c2s_cipher || !s2c_cipher) {
    fail(errc::kex_failed, DisconnectReason::key_exchange_failed, "cipher setup failed");
    return false;
  }
  kex_.pending_out = std::move(client ? *c2s_cipher : *s2c_cipher);
  kex_.pending_in = std::move(client ? *s2c_cipher : *c2s_cipher);
  cipher_out_name_ = client ? c2s->name : s2c->name;
  cipher_in_name_ = client ? s2c->name : c2s->name;
  rekey_limit_ = config_.rekey_bytes ? config_.rekey_bytes
                                     : std::min(c2s->default_rekey_bytes, s2c->default_rekey_bytes);
  return true;
}

void Connection::send_newkeys() {
  const std::uint8_t newkeys[] = {msg::kNewKeys};
  write_packet(newkeys);
  encoder_.set_cipher(std::move(kex_.pending_out));
  if (strict_kex_) encoder_.reset_sequence();
  kex_.sent_newkeys = true;
  // Messages held back during the exchange go out now, in order, under the new keys.
  while (!deferred_.empty()) {
    write_packet(deferred_.front());
    deferred_.pop_front();
  }
  if (kex_.received_newkeys) finish_kex_round();
}

void Connection::on_newkeys(Reader& r) {
  if (!kex_.pending_in || !r.expect_end()) {
    fail(errc::unexpected_message, DisconnectReason::protocol_error, "unexpected NEWKEYS");
    return;
  }
  decoder_.set_cipher(std::move(kex_.pending_in));
  if (strict_kex_) decoder_.reset_sequence();
  kex_.received_newkeys = true;
  if (kex_.sent_newkeys) finish_kex_round();
}

void Connection::finish_kex_round() {
  const bool initial = !first_kex_done_;
  event::KexDone done{initial, kex_.algs.kex, kex_.algs.host_key, cipher_in_name_, cipher_out_name_};
  first_kex_done_ = true;
  kex_ = KexRound{};
  emit(std::move(done));
  if (initial && config_.role == Role::client) {
    Bytes p;
    Writer(p).u8(msg::kServiceRequest).string("ssh-userauth");
    send_payload(p);
    auth_stage_ = AuthStage::service_requested;
  }
}

}  // namespace vtunnel::ssh
