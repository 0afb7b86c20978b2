"""asyncssh client against our server: global requests with reply data, direct-tcpip echo,
rekeying. Usage: asyncssh_client.py PORT CLIENT_KEY_FILE KNOWN_HOSTS_FILE"""
import asyncio
import sys
import warnings

warnings.filterwarnings("ignore")
import asyncssh  # noqa: E402

MSG_REQUEST_SUCCESS, MSG_REQUEST_FAILURE = 81, 82


async def main(port, key, known_hosts):
    async with asyncssh.connect("127.0.0.1", port, username="vtunnel", client_keys=[key],
                                known_hosts=known_hosts, rekey_bytes=256 * 1024) as conn:
        # Reply data comes right after the message type, with no length prefix (as Go does).
        kind, packet = await conn._make_global_request(b"ping")
        assert kind == MSG_REQUEST_SUCCESS, kind
        data = packet.get_remaining_payload()
        assert data == b"pong", data
        kind, _ = await conn._make_global_request(b"no-such-request")
        assert kind == MSG_REQUEST_FAILURE, kind

        reader, writer = await conn.open_connection("127.0.0.1", 9)
        payload = bytes((i * 7 + 3) & 0xFF for i in range(3 * 1024 * 1024 + 11))
        writer.write(payload)
        writer.write_eof()
        echoed = await reader.read()
        assert echoed == payload, (len(echoed), len(payload))
        writer.close()
    print("ok")


asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
