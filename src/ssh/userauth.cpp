// Connection: service request and user authentication (RFC 4252): "none" and "publickey"
// with ssh-ed25519.
#include <botan/mem_ops.h>

#include "core/log.hpp"
#include "ssh/connection.hpp"

namespace vtunnel::ssh {
namespace {
constexpr std::string_view kUserauth = "ssh-userauth";
constexpr std::string_view kConnectionService = "ssh-connection";
constexpr std::size_t kMaxUserNameLength = 256;
}  // namespace

Bytes Connection::publickey_signed_data(std::string_view user, std::string_view service,
                                        std::string_view algorithm, ByteSpan key_blob) const {
  Bytes d;
  Writer(d)
      .string(session_id_)
      .u8(msg::kUserauthRequest)
      .string(user)
      .string(service)
      .string("publickey")
      .boolean(true)
      .string(algorithm)
      .string(key_blob);
  return d;
}

void Connection::handle_auth_message(std::uint8_t type, Reader& r) {
  auto malformed = [&] {
    fail(errc::protocol_error, DisconnectReason::protocol_error, "malformed authentication message");
  };
  auto unexpected = [&] {
    fail(errc::unexpected_message, DisconnectReason::protocol_error,
         "unexpected authentication message " + std::to_string(type));
  };
  if (type == msg::kExtInfo) return;  // we never ask for extensions; tolerate them

  if (config_.role == Role::client) {
    switch (type) {
      case msg::kServiceAccept: {
        auto name = r.text();
        if (!name) return malformed();
        if (auth_stage_ != AuthStage::service_requested || *name != kUserauth) return unexpected();
        // "none" first, as OpenSSH and Go do: a keyless server accepts it.
        Bytes p;
        Writer(p).u8(msg::kUserauthRequest).string(config_.user).string(kConnectionService).string("none");
        send_payload(p);
        auth_stage_ = AuthStage::none_sent;
        return;
      }
      case msg::kUserauthFailure: {
        auto methods = r.name_list();
        auto partial = r.boolean();
        if (!methods || !partial) return malformed();
        if (auth_stage_ == AuthStage::none_sent && config_.client_key &&
            name_list_contains(*methods, "publickey")) {
          client_send_auth_request();
          return;
        }
        if (auth_stage_ != AuthStage::none_sent && auth_stage_ != AuthStage::publickey_sent)
          return unexpected();
        fail(errc::auth_failed, DisconnectReason::no_more_auth_methods_available,
             config_.client_key ? "server rejected our key (methods it accepts: " + log::escaped(*methods, 100) + ")"
                                : "server requires a key (methods it accepts: " + log::escaped(*methods, 100) + ")");
        return;
      }
      case msg::kUserauthSuccess:
        if (auth_stage_ != AuthStage::none_sent && auth_stage_ != AuthStage::publickey_sent)
          return unexpected();
        auth_stage_ = AuthStage::done;
        authenticated_ = true;
        emit(event::Authenticated{config_.user});
        return;
      case msg::kUserauthBanner: return;
      default: return unexpected();
    }
  }

  switch (type) {
    case msg::kServiceRequest: {
      auto name = r.text();
      if (!name || !r.expect_end()) return malformed();
      if (*name != kUserauth || service_accepted_) {
        fail(errc::unexpected_message, DisconnectReason::service_not_available,
             "service not available: " + log::escaped(*name, 64));
        return;
      }
      service_accepted_ = true;
      Bytes p;
      Writer(p).u8(msg::kServiceAccept).string(kUserauth);
      send_payload(p);
      return;
    }
    case msg::kUserauthRequest:
      if (!service_accepted_) return unexpected();
      if (authenticated_) return;  // RFC 4252 §5.1: ignore requests after success
      return server_on_userauth_request(r);
    default: return unexpected();
  }
}

void Connection::client_send_auth_request() {
  const SigningKey& key = *config_.client_key;
  Bytes signature = key.sign(
      publickey_signed_data(config_.user, kConnectionService, key.algorithm(), key.public_blob()), rng_);
  Bytes p;
  Writer(p)
      .u8(msg::kUserauthRequest)
      .string(config_.user)
      .string(kConnectionService)
      .string("publickey")
      .boolean(true)
      .string(key.algorithm())
      .string(key.public_blob())
      .string(signature);
  send_payload(p);
  auth_stage_ = AuthStage::publickey_sent;
}

void Connection::server_on_userauth_request(Reader& r) {
  ++auth_requests_;
  auto user = r.text();
  auto service = r.text();
  auto method = r.text();
  if (!user || !service || !method || user->size() > kMaxUserNameLength) {
    fail(errc::protocol_error, DisconnectReason::protocol_error, "malformed authentication request");
    return;
  }
  const bool keyless = !config_.authorized_client_key.has_value();
  auto refuse = [&](bool counts) {
    Bytes p;
    Writer(p).u8(msg::kUserauthFailure).string(keyless ? "none" : "publickey").boolean(false);
    send_payload(p);
    if (counts && ++auth_failures_ >= config_.max_auth_attempts)
      fail(errc::auth_failed, DisconnectReason::no_more_auth_methods_available,
           "too many authentication failures");
  };
  auto accept = [&] {
    const std::uint8_t success[] = {msg::kUserauthSuccess};
    send_payload(success);
    authenticated_ = true;
    emit(event::Authenticated{std::string(*user)});
  };
  if (*service != kConnectionService) return refuse(true);
  if (*method == "none") {
    if (keyless) return accept();
    return refuse(false);  // the usual first probe; not an attempt
  }
  if (*method != "publickey" || keyless) return refuse(true);

  auto has_signature = r.boolean();
  auto algorithm = r.text();
  auto blob = r.string();
  if (!has_signature || !algorithm || !blob) {
    fail(errc::protocol_error, DisconnectReason::protocol_error, "malformed publickey request");
    return;
  }
  const Bytes& allowed = *config_.authorized_client_key;
  const bool key_matches = *algorithm == kEd25519 && blob->size() == allowed.size() &&
                           Botan::constant_time_compare(blob->data(), allowed.data(), allowed.size());
  if (!*has_signature) {
    if (!r.expect_end()) {
      fail(errc::protocol_error, DisconnectReason::protocol_error, "malformed publickey request");
      return;
    }
    if (!key_matches) return refuse(true);
    Bytes p;
    Writer(p).u8(msg::kUserauthPkOk).string(*algorithm).string(*blob);
    send_payload(p);
    return;
  }
  auto signature = r.string();
  if (!signature || !r.expect_end()) {
    fail(errc::protocol_error, DisconnectReason::protocol_error, "malformed publickey request");
    return;
  }
  if (!key_matches) return refuse(true);
  Bytes signed_data = publickey_signed_data(*user, *service, *algorithm, *blob);
  if (!verify_signature(*algorithm, *blob, *signature, signed_data)) return refuse(true);
  accept();
}

}  // namespace vtunnel::ssh
