#pragma once
// Internal to vtunnel_ws (it needs Botan's headers): the state behind a TlsStream, one Botan
// TLS channel (Botan::TLS::Client or Botan::TLS::Server) and the Botan callbacks that collect
// its output. TlsClientStream and TlsServerStream subclass it with their policy, credentials
// and wording, make the Botan channel, then run handshake().
#include <botan/auto_rng.h>
#include <botan/tls_callbacks.h>
#include <botan/tls_channel.h>
#include <botan/tls_session_manager.h>

#include <exception>
#include <memory>
#include <string>
#include <system_error>

#include "core/bytes.hpp"
#include "core/stream.hpp"
#include "core/task.hpp"
#include "ws/error.hpp"
#include "ws/handshake_result.hpp"

namespace vtunnel::ws::detail {

struct TlsChannel : Botan::TLS::Callbacks {
  // `peer` names the other end in messages: "server" or "client".
  TlsChannel(std::unique_ptr<Stream> transport_stream, const char* peer);
  ~TlsChannel() override;

  std::unique_ptr<Stream> transport;
  Botan::AutoSeeded_RNG rng;
  Botan::TLS::Session_Manager_Noop sessions;
  // Made by start(); the subclass's destructor resets it, as it refers to the subclass's policy
  // and credentials.
  std::unique_ptr<Botan::TLS::Channel> botan;

  Bytes tx_pending;   // ciphertext emitted by Botan, not yet handed to the transport
  Bytes tx_sending;   // ciphertext being written (stable while the write is pending)
  Bytes rx;           // ciphertext read buffer
  Bytes plain;        // decrypted application data: [plain_pos, plain.size()) not yet read
  std::size_t plain_pos = 0;
  bool close_notify = false;
  bool closed = false;
  std::error_code error{};
  std::string detail;
  std::string negotiated;

  // Botan::TLS::Callbacks
  void tls_emit_data(const std::uint8_t data[], std::size_t size) override;
  void tls_record_received(std::uint64_t, const std::uint8_t data[], std::size_t size) override;
  void tls_alert(Botan::TLS::Alert alert) override;
  bool tls_session_established(const Botan::TLS::Session& session) override;

  // Records the first (most specific) error only.
  void fail(errc e, std::string why);
  // Feeds ciphertext to Botan; exceptions (bad records, failed verification) become errors.
  void feed(ByteSpan data);
  // Hands Botan's pending records to the transport.
  Task<Result<void>> flush();
  // Runs the handshake on the Botan channel made by start() (none: error says why):
  // sends Botan's records, feeds it the peer's, until the channel is active. On failure the
  // transport is closed and error/detail say why.
  Task<bool> handshake();

  // Makes the Botan channel with `make` (it may emit the first records already); a failure is
  // "TLS <role> setup failed: ...", and handshake() then ends at once.
  template <class Make>
  void start(const char* role, Make make) {
    try {
      botan = make();
    } catch (const std::exception& e) {
      fail(errc::tls_handshake_failed, std::string("TLS ") + role + " setup failed: " + e.what());
    }
  }

  // A result with this channel's error and detail (none after a successful handshake).
  template <class S>
  HandshakeResult<S> outcome() const {
    HandshakeResult<S> r;
    r.error = error;
    r.detail = detail;
    return r;
  }

 protected:
  // An exception from Botan's received_data(): "TLS handshake failed: ..." while handshaking,
  // else "TLS error: ...". `tls_exception`: it is a Botan::TLS::TLS_Exception.
  virtual void fail_received(const std::exception& e, bool tls_exception);
  // The first bytes the peer sent in the handshake, before Botan sees them; false after fail().
  virtual bool check_first_bytes(ByteSpan) { return true; }
  // Added to "the <peer> closed the connection" when the handshake ends at EOF.
  const char* eof_hint = "";

 private:
  const char* peer_;
};

}  // namespace vtunnel::ws::detail
