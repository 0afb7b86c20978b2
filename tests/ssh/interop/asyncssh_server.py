"""asyncssh server for our client: answers global request "ping" with SSH_MSG_REQUEST_SUCCESS
followed by the raw bytes "pong" (as the Go server does), allows direct-tcpip, rekeys often.
Usage: asyncssh_server.py ecdsa|ed25519 AUTHORIZED_KEYS_FILE|-   (prints host key line, port)"""
import asyncio
import sys
import warnings

warnings.filterwarnings("ignore")
import asyncssh  # noqa: E402
from asyncssh.connection import SSHServerConnection  # noqa: E402


def _process_ping_global_request(self, packet):
    packet.check_end()
    self._report_global_response(b"pong")


SSHServerConnection._process_ping_global_request = _process_ping_global_request


class Server(asyncssh.SSHServer):
    def __init__(self, keyless):
        self.keyless = keyless

    def begin_auth(self, username):
        return not self.keyless

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        return True


async def main(kind, authorized):
    host_key = asyncssh.generate_private_key("ecdsa-sha2-nistp256" if kind == "ecdsa" else "ssh-ed25519")
    keyless = authorized == "-"
    server = await asyncssh.create_server(
        lambda: Server(keyless), "127.0.0.1", 0, server_host_keys=[host_key],
        authorized_client_keys=None if keyless else authorized, rekey_bytes=512 * 1024)
    port = server.sockets[0].getsockname()[1]
    print(host_key.export_public_key("openssh").decode().split()[1], flush=True)
    print(port, flush=True)
    await asyncio.sleep(3600)


asyncio.run(main(sys.argv[1], sys.argv[2]))
