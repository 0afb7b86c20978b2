// go_peer: the SSH library the Go original is built on (golang.org/x/crypto/ssh), as a test
// peer for our SSH core. Behaves like the vtunnel Go side on the wire: "ping" answered with
// SSH_MSG_REQUEST_SUCCESS + raw "pong", "tunnel" channels opened by the server, rekeying at a
// small threshold.
//
//   go_peer server CIPHER MIB CLIENT_PUB_B64|-      prints host key blob (base64) and port
//   go_peer client CIPHER MIB PORT SEED_HEX HOST_BLOB_B64
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go_peer: "+format+"\n", args...)
	os.Exit(1)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(12345)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// echoCheck writes data on ch, half-closes, and checks that the same bytes come back.
func echoCheck(ch ssh.Channel, data []byte) {
	go func() {
		if _, err := ch.Write(data); err != nil {
			fail("write: %v", err)
		}
		ch.CloseWrite()
	}()
	got, err := io.ReadAll(ch)
	if err != nil {
		fail("read: %v", err)
	}
	if !bytes.Equal(got, data) {
		fail("echo mismatch: got %d bytes, want %d", len(got), len(data))
	}
}

func answerPings(reqs <-chan *ssh.Request) {
	for req := range reqs {
		if req.Type == "ping" {
			req.Reply(true, []byte("pong"))
		} else {
			req.Reply(false, []byte("unknown request"))
		}
	}
}

func expectPong(conn ssh.Conn) {
	ok, payload, err := conn.SendRequest("ping", true, nil)
	if err != nil || !ok || string(payload) != "pong" {
		fail("ping: ok=%v payload=%q err=%v", ok, payload, err)
	}
}

func main() {
	if len(os.Args) < 4 {
		fail("usage")
	}
	cipher := os.Args[2]
	mib, _ := strconv.Atoi(os.Args[3])
	data := pattern(mib*1024*1024 + 13)
	cfg := ssh.Config{Ciphers: []string{cipher}, RekeyThreshold: 512 * 1024}

	switch os.Args[1] {
	case "server":
		sc := &ssh.ServerConfig{Config: cfg}
		var host ssh.Signer
		if os.Args[4] == "-" {
			sc.NoClientAuth = true
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			host, _ = ssh.NewSignerFromKey(k)
		} else {
			want, _ := base64.StdEncoding.DecodeString(os.Args[4])
			sc.PublicKeyCallback = func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
				if bytes.Equal(key.Marshal(), want) {
					return nil, nil
				}
				return nil, fmt.Errorf("unknown key")
			}
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			host, _ = ssh.NewSignerFromKey(priv)
		}
		sc.AddHostKey(host)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail("listen: %v", err)
		}
		// Host key blob first, then the port.
		fmt.Println(base64.StdEncoding.EncodeToString(host.PublicKey().Marshal()))
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		nc, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		sconn, chans, reqs, err := ssh.NewServerConn(nc, sc)
		if err != nil {
			fail("handshake: %v", err)
		}
		go answerPings(reqs)
		go func() {
			for nch := range chans {
				nch.Reject(ssh.Prohibited, "server refuses client channels")
			}
		}()
		expectPong(sconn)
		ch, creqs, err := sconn.OpenChannel("tunnel", []byte(`{"port":8080}`))
		if err != nil {
			fail("open tunnel: %v", err)
		}
		go ssh.DiscardRequests(creqs)
		echoCheck(ch, data)
		ch.Close()
		sconn.Close()
	case "client":
		port := os.Args[4]
		seed, _ := hex.DecodeString(os.Args[5])
		hostBlob, _ := base64.StdEncoding.DecodeString(os.Args[6])
		hostKey, err := ssh.ParsePublicKey(hostBlob)
		if err != nil {
			fail("host key: %v", err)
		}
		signer, _ := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed))
		cc := &ssh.ClientConfig{
			Config:          cfg,
			User:            "vtunnel",
			Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.FixedHostKey(hostKey),
			Timeout:         10 * time.Second,
		}
		nc, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			fail("dial: %v", err)
		}
		conn, chans, reqs, err := ssh.NewClientConn(nc, "127.0.0.1:"+port, cc)
		if err != nil {
			fail("handshake: %v", err)
		}
		go answerPings(reqs)
		go func() {
			for nch := range chans {
				nch.Reject(ssh.UnknownChannelType, "unknown channel type")
			}
		}()
		expectPong(conn)
		ok, payload, err := conn.SendRequest("listen", true, []byte(`{"port":1}`))
		if err != nil || ok {
			fail("listen: ok=%v payload=%q err=%v", ok, payload, err)
		}
		target := struct {
			Host     string
			Port     uint32
			OrigHost string
			OrigPort uint32
		}{"127.0.0.1", 9, "127.0.0.1", 1}
		ch, creqs, err := conn.OpenChannel("direct-tcpip", ssh.Marshal(&target))
		if err != nil {
			fail("open direct-tcpip: %v", err)
		}
		go ssh.DiscardRequests(creqs)
		echoCheck(ch, data)
		ch.Close()
		conn.Close()
	default:
		fail("unknown mode")
	}
	fmt.Println("ok")
}
